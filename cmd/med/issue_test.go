package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// issueJSON is the part of mecli issue show --json these tests read.
type issueJSON struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	State     string   `json:"state"`
	Reason    string   `json:"reason"`
	Author    string   `json:"author"`
	Labels    []string `json:"labels"`
	Assignees []string `json:"assignees"`
	Body      string   `json:"body"`
	Comments  []struct {
		ID     string `json:"id"`
		Author string `json:"author"`
		Body   string `json:"body"`
	} `json:"comments"`
	Heads []string `json:"heads"`
}

// Three real daemons: an issue opened through mecli on one node, commented
// on another, labelled by the delegate and closed by its author ends in the
// same state on all three.
func TestIssueThroughMecli(t *testing.T) {
	needBinaries(t)
	roots := []string{tempRoot(t), tempRoot(t), tempRoot(t)}
	dids := make([]string, 3)
	for i, r := range roots {
		dids[i] = authInit(t, r)
	}
	n1 := startNode1(t, roots[0], "delegate")
	addr := n1.stdoutField(t, "address")
	startNode1(t, roots[1], "author", "--bootstrap", addr)
	startNode1(t, roots[2], "commenter", "--bootstrap", addr)

	var added repoJSON
	if err := mecliJSON(t, &added, "--root", roots[0], "repo", "add", "--path", newSourceRepo(t)); err != nil {
		t.Fatal(err)
	}
	for _, r := range roots[1:] {
		testutil.WaitForState(t, r+" to replicate the repository", 30*time.Second, func() (bool, string) {
			st, why := repoStatus(t, r, added.RepoID)
			return st.Replica == "up-to-date", why + " " + st.Replica
		})
	}
	repo := []string{"--repo", added.RepoID}
	mecli := func(root string, args ...string) {
		t.Helper()
		if r := runCmd(t, mecliBin, append(append([]string{"--root", root, "issue"}, args...), repo...)...); r.code != 0 {
			t.Fatalf("mecli issue %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	var opened struct {
		Change string `json:"change"`
	}
	if err := mecliJSON(t, &opened, append([]string{"--root", roots[1], "issue", "open", "--title", "Clone hangs", "--body", "After the handshake."}, repo...)...); err != nil {
		t.Fatal(err)
	}
	short := opened.Change[:8]
	show := func(root string) (issueJSON, string) {
		var is issueJSON
		err := mecliJSON(t, &is, append([]string{"--root", root, "issue", "show", short}, repo...)...)
		if err != nil {
			return is, err.Error()
		}
		return is, ""
	}
	for _, r := range []string{roots[0], roots[2]} {
		testutil.WaitForState(t, r+" to show the issue", 30*time.Second, func() (bool, string) {
			is, why := show(r)
			return is.Title == "Clone hangs", why
		})
	}
	mecli(roots[2], "comment", short, "--body", "Same here.")
	testutil.WaitForState(t, "the delegate to show the comment", 30*time.Second, func() (bool, string) {
		is, why := show(roots[0])
		return len(is.Comments) == 1, why
	})
	mecli(roots[0], "label", short, "--add", "bug")
	testutil.WaitForState(t, "the author to show the label", 30*time.Second, func() (bool, string) {
		is, why := show(roots[1])
		return slices.Equal(is.Labels, []string{"bug"}) && len(is.Comments) == 1, why
	})
	mecli(roots[1], "close", short, "--reason", "solved")

	sameEverywhere(t, roots, show, func(r string, is issueJSON) {
		if is.Author != dids[1] || is.Comments[0].Author != dids[2] || is.Comments[0].Body != "Same here." || is.Reason != "solved" {
			t.Fatalf("%s shows %+v", r, is)
		}
	})
	var list []issueJSON
	if err := mecliJSON(t, &list, append([]string{"--root", roots[2], "issue", "list", "--state", "all"}, repo...)...); err != nil || len(list) != 1 || list[0].ID != opened.Change {
		t.Fatalf("issue list --json: %+v, %v", list, err)
	}
	text := runCmd(t, mecliBin, append([]string{"--root", roots[2], "issue", "list", "--state", "closed"}, repo...)...)
	if text.code != 0 || !strings.Contains(text.stdout, "Clone hangs") || !strings.Contains(text.stdout, "closed") || !strings.Contains(text.stdout, "bug") {
		t.Fatalf("issue list: %q %q", text.stdout, text.stderr)
	}
}

// sameEverywhere waits until every root shows the issue closed, with one
// comment and one label, checks each state and that all are equal.
func sameEverywhere(t *testing.T, roots []string, show func(string) (issueJSON, string), check func(string, issueJSON)) {
	t.Helper()
	var states []string
	for _, r := range roots {
		var is issueJSON
		testutil.WaitForState(t, r+" to show the issue closed", 30*time.Second, func() (bool, string) {
			var why string
			is, why = show(r)
			return is.State == "closed" && len(is.Heads) == 1 && len(is.Comments) == 1 && len(is.Labels) == 1, why + " " + is.State
		})
		check(r, is)
		j, _ := json.Marshal(is)
		states = append(states, string(j))
	}
	if states[0] != states[1] || states[1] != states[2] {
		t.Fatalf("the nodes disagree:\n%s\n%s\n%s", states[0], states[1], states[2])
	}
}
