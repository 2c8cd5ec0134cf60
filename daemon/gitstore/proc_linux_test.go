package gitstore

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// A process working in a replica (GIT_DIR under the repos directory) is
// killed; one working elsewhere is not.
func TestKillStrays(t *testing.T) {
	repos := filepath.Join(t.TempDir(), "repos")
	start := func(gitDir string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.Env = []string{"GIT_DIR=" + gitDir}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	stray := start(filepath.Join(repos, "zW1abc.git"))
	other := start(filepath.Join(t.TempDir(), "repos2", "x.git"))
	if n := KillStrays(repos); n != 1 {
		t.Fatalf("KillStrays = %d, want 1", n)
	}
	var ee *exec.ExitError
	if err := stray.Wait(); !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("the stray process ended with %v, want killed", err)
	}
	if !alive(other.Process.Pid) {
		t.Fatal("a process working elsewhere was killed")
	}
}
