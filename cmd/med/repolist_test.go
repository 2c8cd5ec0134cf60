package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/megaengine/megaengine/internal/testutil"
)

// repo list tells the state of a working copy in text and in JSON, one
// state after the other, on real git repositories: up to date, behind,
// ahead, diverged, error (with the reason), missing; and a shared working
// repository that cannot be read. Every text line fits 80 columns.
func TestRepoListStates(t *testing.T) {
	needBinaries(t)
	root := tempRoot(t)
	authInit(t, root)
	startNode1(t, root, "solo").stdoutField(t, "address") // the daemon is up
	src := filepath.Join(tempRoot(t), "tiny")             // short paths: lines show them whole
	os.MkdirAll(src, 0o755)
	gitIn(t, src, "init", "-q", "-b", "main")
	commitIn(t, src, "README.md", "tiny\n")
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", root, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(tempRoot(t), "clone")
	if r := runCmd(t, mecliBin, "--root", root, "repo", "clone", added.RepoID, clone); r.code != 0 {
		t.Fatalf("repo clone: %+v", r)
	}

	// want waits until repo list --json gives the clone status, then checks
	// that the text shows the clone's line as wantText (a prefix).
	want := func(status, wantText string) {
		t.Helper()
		testutil.WaitForState(t, "the clone to be "+status, 20*time.Second, func() (bool, string) {
			r, ok, why := repoOn(t, root, added.RepoID)
			if !ok || len(r.Clones) != 1 {
				return false, why
			}
			return r.Clones[0].Status == status, r.Clones[0].Status
		})
		line := listLine(t, root, "  clone "+clone+": ")
		if !strings.HasPrefix(line, "  clone "+clone+": "+wantText) {
			t.Errorf("clone %s: the text says %q, want %q", status, line, wantText)
		}
	}
	want("up-to-date", "up to date")
	commitIn(t, src, "a.txt", "1\n")
	want("behind", "behind: mecli repo pull updates it")
	if r := runCmd(t, mecliBin, "--root", root, "repo", "pull", "--path", clone); r.code != 0 {
		t.Fatalf("repo pull: %+v", r)
	}
	want("up-to-date", "up to date")
	commitIn(t, clone, "local.txt", "mine\n")
	want("ahead", "ahead: it has local commits")
	commitIn(t, src, "a.txt", "2\n")
	want("diverged", "DIVERGED: local and upstream commits")
	os.WriteFile(filepath.Join(clone, ".git", "HEAD"), []byte("garbage\n"), 0o644)
	want("error", "ERROR: it is not a git repository any more")
	os.RemoveAll(clone)
	want("missing", "MISSING: deleted or moved")

	// The shared working repository is deleted: nothing can be published.
	os.RemoveAll(src)
	testutil.WaitForState(t, "the shared repository to be unreadable", 20*time.Second, func() (bool, string) {
		r, _, why := repoOn(t, root, added.RepoID)
		return r.Replica == "work-unreadable", why + " " + r.Replica
	})
	row := listLine(t, root, "tiny ")
	why := listLine(t, root, "    ERROR: ")
	if !strings.HasSuffix(row, "  CANNOT PUBLISH") || why != "    ERROR: the working repository does not exist" {
		t.Errorf("an unreadable shared repository is listed as\n%s\n%s", row, why)
	}
}

func commitIn(tb testing.TB, dir, file, content string) {
	tb.Helper()
	os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644)
	gitIn(tb, dir, "add", file)
	gitIn(tb, dir, "commit", "-q", "-m", "change "+file)
}

// listLine runs repo list, checks that it fits 80 columns, and returns its
// first line that starts with prefix ("" if none).
func listLine(tb testing.TB, root, prefix string) string {
	tb.Helper()
	r := runCmd(tb, mecliBin, "--root", root, "repo", "list")
	if r.code != 0 {
		tb.Fatalf("repo list: %+v", r)
	}
	var found string
	for l := range strings.Lines(r.stdout) {
		l = strings.TrimSuffix(l, "\n")
		if n := utf8.RuneCountInString(l); n > 80 {
			tb.Errorf("repo list printed a line of %d columns:\n%s", n, r.stdout)
		}
		if found == "" && strings.HasPrefix(l, prefix) {
			found = l
		}
	}
	return found
}
