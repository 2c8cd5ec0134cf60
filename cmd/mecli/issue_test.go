package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/rpc"
)

// The issue commands find the repository from the working copy the
// current directory is in, send what their flags say, and print --json
// with the members scripts read, or a readable list and thread.
func TestIssueCommands(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	wd := filepath.Join(helloCopy, "docs")

	out := mustRun(t, root, wd, "issue", "list", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("issue list --json: %q, %v", out, err)
	}
	for _, k := range []string{"id", "title", "state", "author", "labels", "assignees"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("issue list --json lacks %q: %v", k, list[0])
		}
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, []any{rpc.IssueListParams{RepoID: repoHello, State: rpc.IssueOpen}}) {
		t.Fatalf("issue list sent %#v, want the repository of the working copy", got)
	}
	text := mustRun(t, root, wd, "issue", "list")
	for _, want := range []string{"open", "e376a5810c5d", "Clone fails behind NAT", "bob", "bug"} {
		if !strings.Contains(text, want) {
			t.Errorf("issue list lacks %q:\n%s", want, text)
		}
	}
	f.takeCalls()

	out = mustRun(t, root, "/", "issue", "show", "e376", "--repo", repoTiny, "--json")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["body"] != "It hangs." {
		t.Fatalf("issue show --json: %q, %v", out, err)
	}
	if cs, _ := d["comments"].([]any); len(cs) != 1 || cs[0].(map[string]any)["author"] != didCarol {
		t.Fatalf("issue show --json comments: %v", d["comments"])
	}
	thread := mustRun(t, root, "/", "issue", "show", "e376", "--repo", repoTiny)
	for _, want := range []string{"Clone fails behind NAT", "It hangs.", "Which relay?", "carol"} {
		if !strings.Contains(thread, want) {
			t.Errorf("issue show lacks %q:\n%s", want, thread)
		}
	}
	f.takeCalls()

	for _, c := range []struct {
		args []string
		want any
	}{
		{[]string{"comment", "e376", "--body", "Me too", "--reply-to", "8a8d"}, rpc.IssueCommentParams{RepoID: repoTiny, ID: "e376", Body: "Me too", ReplyTo: "8a8d"}},
		{[]string{"label", "e376", "--add", "bug", "--add", "nat", "--remove", "wip"}, rpc.IssueLabelParams{RepoID: repoTiny, ID: "e376", Add: []string{"bug", "nat"}, Remove: []string{"wip"}}},
		{[]string{"assign", "e376", "--add", didAlice}, rpc.IssueAssignParams{RepoID: repoTiny, ID: "e376", Add: []string{didAlice}}},
		{[]string{"close", "e376", "--reason", "other"}, rpc.IssueCloseParams{RepoID: repoTiny, ID: "e376", Reason: "other"}},
		{[]string{"reopen", "e376"}, rpc.IssueIDParams{RepoID: repoTiny, ID: "e376"}},
		{[]string{"react", "e376", "🎉", "--comment", "8a8d"}, rpc.IssueReactParams{RepoID: repoTiny, ID: "e376", Comment: "8a8d", Emoji: "🎉"}},
		{[]string{"open", "--title", "New", "--body", "Text", "--label", "bug"}, rpc.IssueOpenParams{RepoID: repoTiny, Title: "New", Body: "Text", Labels: []string{"bug"}}},
	} {
		mustRun(t, root, "/", append(append([]string{"issue"}, c.args...), "--repo", repoTiny)...)
		if got := f.takeCalls(); !reflect.DeepEqual(got, []any{c.want}) {
			t.Errorf("issue %s sent %#v, want %#v", strings.Join(c.args, " "), got, c.want)
		}
	}

	// Outside any working copy, without --repo: a usage error.
	if code, _, errOut := mecli(t, root, t.TempDir(), "issue", "list"); code != 2 || !strings.Contains(errOut, "--repo") {
		t.Fatalf("issue list outside a working copy: exit %d, %q", code, errOut)
	}
}
