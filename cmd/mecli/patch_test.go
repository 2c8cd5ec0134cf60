package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/rpc"
)

// The patch commands find the repository as the issue commands do, send
// what their flags say, and print --json with the members scripts read,
// or a readable list and patch.
func TestPatchCommands(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	wd := filepath.Join(helloCopy, "docs")

	out := mustRun(t, root, wd, "patch", "list", "--json", "--state", "all")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("patch list --json: %q, %v", out, err)
	}
	for _, k := range []string{"id", "title", "state", "author"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("patch list --json lacks %q: %v", k, list[0])
		}
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, []any{rpc.PatchListParams{RepoID: repoHello, State: rpc.PatchAll}}) {
		t.Fatalf("patch list sent %#v", got)
	}
	out = mustRun(t, root, "/", "patch", "show", "3a14", "--repo", repoTiny, "--json")
	var d struct {
		Revisions []map[string]any `json:"revisions"`
		Reviews   []map[string]any `json:"reviews"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Revisions) != 2 || len(d.Reviews) != 1 {
		t.Fatalf("patch show --json: %q, %v", out, err)
	}
	for _, k := range []string{"id", "base", "head"} {
		if _, ok := d.Revisions[0][k]; !ok {
			t.Errorf("patch show --json revisions lack %q", k)
		}
	}
	for _, k := range []string{"author", "revision", "verdict", "summary", "comments"} {
		if _, ok := d.Reviews[0][k]; !ok {
			t.Errorf("patch show --json reviews lack %q", k)
		}
	}
	text := mustRun(t, root, "/", "patch", "show", "3a14", "--repo", repoTiny)
	for _, want := range []string{"Relay fallback", "revisions:", "reject by carol", "One race left.", "relay.go:40-44 Lock here."} {
		if !strings.Contains(text, want) {
			t.Errorf("patch show lacks %q:\n%s", want, text)
		}
	}
	f.takeCalls()
	for _, c := range []struct {
		args []string
		want any
	}{
		{[]string{"review", "3a14", "--accept", "--summary", "Good", "--comment", "a/b.go:3:why?", "--comment", "c.go:5-7:x:y"},
			rpc.PatchReviewParams{RepoID: repoTiny, ID: "3a14", Verdict: rpc.VerdictAccept, Summary: "Good",
				Comments: []rpc.PatchInlineComment{{Path: "a/b.go", Start: 3, End: 3, Body: "why?"}, {Path: "c.go", Start: 5, End: 7, Body: "x:y"}}}},
		{[]string{"review", "3a14", "--reject"}, rpc.PatchReviewParams{RepoID: repoTiny, ID: "3a14", Verdict: rpc.VerdictReject}},
		{[]string{"comment", "3a14", "--body", "Tested", "--revision", "efa9"}, rpc.PatchCommentParams{RepoID: repoTiny, ID: "3a14", Body: "Tested", Revision: "efa9"}},
		{[]string{"close", "3a14"}, rpc.PatchIDParams{RepoID: repoTiny, ID: "3a14"}},
		{[]string{"reopen", "3a14"}, rpc.PatchIDParams{RepoID: repoTiny, ID: "3a14"}},
		{[]string{"ready", "3a14"}, rpc.PatchIDParams{RepoID: repoTiny, ID: "3a14"}},
		{[]string{"open", "--title", "T", "--base", c40("a"), "--head", c40("b"), "--draft"}, rpc.PatchOpenParams{RepoID: repoTiny, Title: "T", Base: c40("a"), Head: c40("b"), Draft: true}},
		{[]string{"revise", "3a14", "--base", c40("a"), "--head", c40("c")}, rpc.PatchReviseParams{RepoID: repoTiny, ID: "3a14", Base: c40("a"), Head: c40("c")}},
	} {
		mustRun(t, root, "/", append(append([]string{"patch"}, c.args...), "--repo", repoTiny)...)
		if got := f.takeCalls(); !reflect.DeepEqual(got, []any{c.want}) {
			t.Errorf("patch %s sent %#v, want %#v", strings.Join(c.args, " "), got, c.want)
		}
	}
	out = mustRun(t, root, wd, "patch", "checkout", "3a14")
	if got := f.takeCalls(); !reflect.DeepEqual(got, []any{rpc.PatchCheckoutParams{RepoID: repoHello, ID: "3a14", Path: wd}}) || !strings.Contains(out, "patch/3a14442") {
		t.Fatalf("patch checkout sent %#v, printed %q", got, out)
	}
	for _, bad := range [][]string{{"review", "3a14"}, {"review", "3a14", "--accept", "--comment", "nolines"}, {"list", "--state", "weird"}} {
		if code, _, _ := mecli(t, root, "/", append(append([]string{"patch"}, bad...), "--repo", repoTiny)...); code != 2 {
			t.Errorf("patch %v: exit %d, want 2", bad, code)
		}
	}
}

func c40(s string) string { return strings.Repeat(s, 40) }
