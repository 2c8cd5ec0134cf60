package protocol_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/megaengine/megaengine"

type listedPackage struct {
	ImportPath string
	Doc        string
	Deps       []string
}

// goList runs `go list -deps=deps -json pattern` and decodes the stream.
func goList(t *testing.T, withDeps bool, patterns ...string) []listedPackage {
	t.Helper()
	args := []string{"list", "-json"}
	if withDeps {
		args = append(args, "-deps")
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func forbid(t *testing.T, pattern string, forbidden ...string) {
	t.Helper()
	pkgs := goList(t, false, pattern)
	if len(pkgs) == 0 {
		t.Fatalf("pattern %s matched no package", pattern)
	}
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s imports %s (directly or not); forbidden by DESIGN.md's import rules", p.ImportPath, dep)
				}
			}
		}
	}
}

// TestImportRules enforces DESIGN.md "The house": protocol imports nothing of
// the project outside protocol/; the tools never pull in the daemon, badger
// or quic-go; the services in daemon/* import neither the daemon root nor
// rpc; internal/testutil (helpers shared by tests) imports nothing of the
// project, and internal/hostile (the attacks tests keep) only protocol/, so
// that any package's tests can use them.
func TestImportRules(t *testing.T) {
	forbid(t, "./protocol/...", module+"/rpc", module+"/daemon", module+"/cmd", module+"/internal")
	forbid(t, "./internal/testutil", module)
	forbid(t, "./internal/hostile", module+"/daemon", module+"/rpc", module+"/cmd")
	heavy := []string{module + "/daemon", "github.com/dgraph-io/badger", "github.com/quic-go/quic-go"}
	forbid(t, "./cmd/mecli", heavy...)
	all := goList(t, false, "./...")
	if hasPackage(all, module+"/cmd/git-remote-mega") {
		forbid(t, "./cmd/git-remote-mega", heavy...)
	}
	if hasPackage(all, module+"/rpc") {
		forbid(t, "./rpc/...", module+"/daemon", "github.com/dgraph-io/badger", "github.com/quic-go/quic-go")
	}
	// The services under daemon/ never import the root package that wires
	// them, nor rpc (the root maps their domain errors to codes); the gossip
	// engine builds without Badger.
	for _, p := range goList(t, false, "./daemon/...") {
		if p.ImportPath == module+"/daemon" {
			continue
		}
		for _, dep := range p.Deps {
			if dep == module+"/daemon" || dep == module+"/rpc" {
				t.Errorf("%s imports %s; services must not import the daemon root or rpc", p.ImportPath, dep)
			}
		}
	}
	forbid(t, "./daemon/gossip", module+"/daemon/store", "github.com/dgraph-io/badger")
}

func hasPackage(pkgs []listedPackage, path string) bool {
	for _, p := range pkgs {
		if p.ImportPath == path {
			return true
		}
	}
	return false
}

// TestPackageDocs requires a doc comment on every package of the project.
func TestPackageDocs(t *testing.T) {
	for _, p := range goList(t, false, "./...") {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}
