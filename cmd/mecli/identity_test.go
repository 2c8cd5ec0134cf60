package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/rpc"
)

func TestRepoEditAndDelegates(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)

	out := mustRun(t, root, workDir, "repo", "edit", repoTiny, "--name", "tinier")
	if !strings.Contains(out, "Signed version 2 of the identity of tinier") || !strings.Contains(out, "threshold 1") {
		t.Errorf("repo edit printed %q", out)
	}
	out = mustRun(t, root, workDir, "repo", "delegate", "add", didBob, repoTiny)
	if !strings.Contains(out, didBob) || !strings.Contains(out, "delegates (2, threshold 1)") {
		t.Errorf("repo delegate add printed %q", out)
	}
	mustRun(t, root, workDir, "repo", "delegate", "remove", didBob, repoTiny)
	out = mustRun(t, root, workDir, "repo", "edit", repoTiny, "--threshold", "2")
	if !strings.Contains(out, "Proposed version 2") || !strings.Contains(out, "1 more delegate(s)") {
		t.Errorf("a threshold proposal printed %q", out)
	}
	name := "tinier"
	want := []any{
		rpc.RepoEditParams{RepoID: repoTiny, Name: &name},
		rpc.RepoEditParams{RepoID: repoTiny, AddDelegate: didBob},
		rpc.RepoEditParams{RepoID: repoTiny, RemoveDelegate: didBob},
		rpc.RepoEditParams{RepoID: repoTiny, Threshold: 2},
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("the daemon got\n%+v\nwant\n%+v", got, want)
	}
	for _, args := range [][]string{
		{"repo", "edit", repoTiny},
		{"repo", "delegate", "add"},
		{"repo", "delegate", "add", "not-a-did", repoTiny},
	} {
		if code, _, errOut := mecli(t, root, workDir, args...); code != 2 || errOut == "" {
			t.Errorf("mecli %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), code, errOut)
		}
	}
	if len(f.takeCalls()) != 0 {
		t.Error("a usage error reached the daemon")
	}
}
