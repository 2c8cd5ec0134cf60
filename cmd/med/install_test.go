package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// installVersion is the version the install test builds with; every
// installed binary must report it.
const installVersion = "v0.0.0-installtest"

// installedTools are the binaries make install puts into $(PREFIX)/bin.
var installedTools = []string{"med", "mecli", "git-remote-mega"}

// make install into a fresh DESTDIR+PREFIX (no bin/ there yet) creates the
// directory, installs binaries that run and report the version given to
// the Makefile, and make uninstall removes them again.
func TestMakeInstallUninstall(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on PATH")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Skip("no go tool to build with")
	}
	tmp := t.TempDir()
	dest, prefix := filepath.Join(tmp, "dest"), "/opt/me"
	bindir := filepath.Join(dest, prefix, "bin")
	vars := []string{"GO=" + goBin, "BIN=" + filepath.Join(tmp, "build"), "DESTDIR=" + dest,
		"PREFIX=" + prefix, "VERSION=" + installVersion}
	runMake := func(target string) {
		t.Helper()
		cmd := exec.Command(makeBin, append([]string{"-C", filepath.Join("..", ".."), target}, vars...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}

	runMake("install")
	for _, tool := range installedTools {
		path := filepath.Join(bindir, tool)
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			t.Errorf("%s --version: %v", path, err)
			continue
		}
		if got, want := strings.TrimSpace(string(out)), tool+" "+installVersion; got != want {
			t.Errorf("%s --version printed %q, want %q", tool, got, want)
		}
	}

	runMake("uninstall")
	left, err := os.ReadDir(bindir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("make uninstall left %s in %s", e.Name(), bindir)
	}
}
