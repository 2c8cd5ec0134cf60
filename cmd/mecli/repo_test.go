package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/megaengine/megaengine/rpc"
)

const (
	didAlice = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
	didCarol = "did:key:z6Mkh7U7jBwoMro3UeHmXes4tKtFbZhMRWejbtunbU4hhvjP"
	didBob   = "did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT"

	repoTiny    = "did:repo:zW1hkhoxv1iBbVDrDHrL6ZnSQoeh5MXcpRET3N2e2HiGmKk"
	repoHello   = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp"
	repoNotes   = "did:repo:zW1iijbtRCrxRjrbJUePT11PWoNTyk52y3eK1dsz5Z5BZTZ"
	repoEvil    = "did:repo:zW1hWQKgmq4TXDuz9Wp7it866C7QgPnLJ9SzezgRg35dbSR" // its name is a path
	repoMissing = "did:repo:zW1mPqSQ1KyJoBko95knbw1EdytrxAdZmdyh6T6VcZPQ8hN" // nobody has it

	workDir   = "/home/u/work"
	helloCopy = "/home/u/work/hello"
	headOld   = "1f7a3c9e5b2d8f4a6c0e2b4d6f8a0c2e4b6d8f0a"
	headNew   = "d4e8a2c6f0b4d8e2a6c0f4b8d2e6a0c4f8b2d6e0"
)

// fakeDaemon is an rpc.Service with canned answers that records the params
// of every repo call.
type fakeDaemon struct {
	mu    sync.Mutex
	calls []any
	repos []rpc.RepoInfo
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{repos: []rpc.RepoInfo{
		{RepoID: repoTiny, Name: "tiny", Description: "Tiny", Creator: didAlice, DefaultBranch: "main",
			Delegates: []string{didAlice}, Holders: []string{didAlice, didBob}, Local: true, Path: "/home/u/src/tiny",
			Seeded: true, Replica: rpc.ReplicaUpToDate, Head: headOld},
		{RepoID: repoHello, Name: "hello", Description: "Hello, world\nin many languages", Creator: didCarol,
			DefaultBranch: "main", Delegates: []string{didCarol}, Holders: []string{didCarol, didBob, didAlice},
			Seeded: true, Replica: rpc.ReplicaBehind, Head: headOld,
			Clones: []rpc.CloneStatus{{Path: helloCopy, Branch: "main", Status: rpc.CloneUpToDate}}},
		{RepoID: repoNotes, Name: "notes", Creator: didBob, DefaultBranch: "main", Delegates: []string{didBob},
			Holders: []string{didBob}, Seeded: true, Replica: rpc.ReplicaUpToDate, Head: headNew,
			Clones: []rpc.CloneStatus{{Path: "/home/u/notes", Branch: "main", Status: rpc.CloneBehind}}},
		{RepoID: repoEvil, Name: "../evil", Creator: didBob, Replica: rpc.ReplicaMissing},
	}}
}

func (f *fakeDaemon) record(p any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
}

// repoCalls returns the params recorded so far and forgets them.
func (f *fakeDaemon) takeCalls() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeDaemon) repo(id string) (rpc.RepoInfo, error) {
	for _, r := range f.repos {
		if r.RepoID == id {
			return r, nil
		}
	}
	return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeNotFound, "repository %s not found", id)
}

func (f *fakeDaemon) NodeInfo(context.Context) (rpc.NodeInfo, error) {
	return rpc.NodeInfo{DID: didAlice}, nil
}
func (f *fakeDaemon) NodePeers(context.Context) ([]rpc.Peer, error) { return nil, nil }
func (f *fakeDaemon) NodeList(context.Context) ([]rpc.NodeEntry, error) {
	return []rpc.NodeEntry{{DID: didBob, Alias: "bob"}}, nil
}
func (f *fakeDaemon) NodeConnect(context.Context, rpc.ConnectParams) (rpc.Peer, error) {
	return rpc.Peer{}, errors.New("not in this test")
}

func (f *fakeDaemon) NodeStop(context.Context) error { return errors.New("not in this test") }

// Subscribe sends two events (those of the asked types) and ends the stream.
func (f *fakeDaemon) Subscribe(types []string) (<-chan rpc.Event, func()) {
	ch := make(chan rpc.Event, 2)
	for _, ev := range []rpc.Event{
		{Type: rpc.EventPeerConnected, DID: didBob, Alias: "bob", Addresses: []string{"127.0.0.1:9001"}},
		{Type: rpc.EventRepoAnnounced, DID: didCarol, Repo: repoHello},
	} {
		if len(types) == 0 || slices.Contains(types, ev.Type) {
			ch <- ev
		}
	}
	close(ch)
	return ch, func() {}
}

func (f *fakeDaemon) RepoAdd(_ context.Context, p rpc.RepoAddParams) (rpc.RepoInfo, error) {
	f.record(p)
	if p.Path == "/home/u/Documents" {
		return rpc.RepoInfo{}, rpc.Errorf(rpc.CodeInvalidArgument, "%s is not a git repository", p.Path)
	}
	return rpc.RepoInfo{RepoID: repoTiny, Name: cmp.Or(p.Name, filepath.Base(p.Path)), Description: p.Description,
		Creator: didAlice, DefaultBranch: "main", Local: true, Path: p.Path, Seeded: true, Replica: rpc.ReplicaUpToDate}, nil
}

func (f *fakeDaemon) RepoList(context.Context) ([]rpc.RepoInfo, error) { return f.repos, nil }

func (f *fakeDaemon) RepoShow(_ context.Context, p rpc.RepoIDParams) (rpc.RepoDetail, error) {
	info, err := f.repo(p.RepoID)
	if err != nil {
		return rpc.RepoDetail{}, err
	}
	d := rpc.RepoDetail{RepoInfo: info}
	if p.RepoID == repoHello {
		d.Namespaces = []rpc.NamespaceRefs{
			{Node: didCarol, Canonical: true, Seq: 1795252800000, Refs: []rpc.RefInfo{
				{Name: "refs/heads/main", OID: headOld}, {Name: "refs/tags/v1.0", OID: headNew}}},
			{Node: didBob, Seq: 1795197852000, Refs: []rpc.RefInfo{{Name: "refs/heads/feature/german", OID: headNew}}},
		}
	}
	return d, nil
}

func (f *fakeDaemon) RepoSync(_ context.Context, p rpc.RepoIDParams, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	f.record(p)
	if _, err := f.repo(p.RepoID); err != nil {
		return rpc.SyncResult{}, err
	}
	if p.RepoID == repoTiny {
		return rpc.SyncResult{RepoID: p.RepoID}, nil
	}
	progress(0, 12629, "receiving objects")
	progress(12629, 12629, "receiving objects")
	return rpc.SyncResult{RepoID: p.RepoID, Updated: true, From: didCarol, Namespaces: 1, Bytes: 12629}, nil
}

func (f *fakeDaemon) RepoClone(_ context.Context, p rpc.RepoCloneParams, progress rpc.ProgressFunc) (rpc.CloneResult, error) {
	f.record(p)
	if _, err := f.repo(p.RepoID); err != nil {
		return rpc.CloneResult{}, err
	}
	progress(1, 2, "copying objects")
	return rpc.CloneResult{RepoID: p.RepoID, Path: p.Path, Branch: "main", Head: headOld}, nil
}

func (f *fakeDaemon) RepoPull(_ context.Context, p rpc.RepoPullParams, progress rpc.ProgressFunc) (rpc.PullResult, error) {
	f.record(p)
	progress(1, 1, "fast-forwarding main")
	if p.Path == "/home/u/notes" {
		return rpc.PullResult{RepoID: repoNotes, Path: p.Path, Branch: "main", Old: headNew, Head: headNew}, nil
	}
	return rpc.PullResult{RepoID: repoHello, Path: p.Path, Branch: "main", Updated: true, Old: headOld, Head: headNew}, nil
}

func (f *fakeDaemon) RepoSeed(_ context.Context, p rpc.RepoIDParams, seed bool) (rpc.RepoInfo, error) {
	f.record(struct {
		rpc.RepoIDParams
		Seed bool
	}{p, seed})
	info, err := f.repo(p.RepoID)
	info.Seeded = seed
	return info, err
}

// RepoSeedRequest: one peer accepts, one takes no requests; as many
// holders are in sync as accepted.
func (f *fakeDaemon) RepoSeedRequest(_ context.Context, p rpc.SeedRequestParams) (rpc.SeedRequestResult, error) {
	f.record(p)
	if _, err := f.repo(p.RepoID); err != nil {
		return rpc.SeedRequestResult{}, err
	}
	return rpc.SeedRequestResult{RepoID: p.RepoID, Replicas: p.Replicas, Accepted: 1, InSync: 1, Answers: []rpc.SeedAnswer{
		{Node: "did:key:z6MkwSD8dBdqcXQzKJZQFPy2hh2izzxskndKCjdmC2dBpfME", Accepted: true, Code: rpc.SeedAccepted, Reason: "seeding"},
		{Node: "did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT", Code: rpc.SeedNotAccepting, Reason: "this node takes no seed requests"},
	}}, nil
}

// RepoLocate and RepoPublish serve git-remote-mega; mecli never calls them.
func (f *fakeDaemon) RepoLocate(context.Context, rpc.RepoLocateParams) (rpc.LocateResult, error) {
	return rpc.LocateResult{}, errors.New("not in this test")
}

func (f *fakeDaemon) RepoPublish(context.Context, rpc.RepoIDParams) (rpc.PublishResult, error) {
	return rpc.PublishResult{}, errors.New("not in this test")
}

func (f *fakeDaemon) RepoEdit(_ context.Context, p rpc.RepoEditParams) (rpc.EditResult, error) {
	f.record(p)
	info, err := f.repo(p.RepoID)
	if err != nil {
		return rpc.EditResult{}, err
	}
	id := rpc.RepoIdent{Version: 2, Name: info.Name, Description: info.Description, Delegates: info.Delegates, Threshold: 1, Signers: info.Delegates[:1]}
	if p.Name != nil {
		id.Name = *p.Name
	}
	if p.AddDelegate != "" {
		id.Delegates = append(slices.Clone(id.Delegates), p.AddDelegate)
	}
	if p.Threshold > 1 {
		id.Threshold = p.Threshold
		return rpc.EditResult{RepoID: p.RepoID, Missing: p.Threshold - 1, Identity: id}, nil
	}
	return rpc.EditResult{RepoID: p.RepoID, Applied: true, Identity: id}, nil
}

func (f *fakeDaemon) RepoRemove(_ context.Context, p rpc.RepoRemoveParams) (rpc.RemoveResult, error) {
	f.record(p)
	if _, err := f.repo(p.RepoID); err != nil {
		return rpc.RemoveResult{}, err
	}
	return rpc.RemoveResult{RepoID: p.RepoID, KeptReplica: p.KeepReplica}, nil
}

func (f *fakeDaemon) RepoVerify(context.Context, rpc.RepoVerifyParams) (rpc.VerifyResult, error) {
	return rpc.VerifyResult{}, errors.New("not in this test")
}

// startDaemon serves f on a socket in a new root short enough for a unix
// socket path, and returns the root.
func startDaemon(t *testing.T, f *fakeDaemon) string {
	t.Helper()
	root, err := os.MkdirTemp("", "me")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	ln, err := rpc.Listen(rpc.SocketPath(root))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rpc.NewServer(f, nil).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return root
}

// mecli runs the tool in-process against the daemon at root, in working
// directory wd.
func mecli(t *testing.T, root, wd string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
		getwd: func() (string, error) { return wd, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = run(ctx, e, append([]string{"--root", root}, args...))
	return code, out.String(), errb.String()
}

// mustRun runs mecli and fails the test unless it exits 0 with nothing on
// stderr (no progress noise when stderr is not a terminal).
func mustRun(t *testing.T, root, wd string, args ...string) string {
	t.Helper()
	code, out, errOut := mecli(t, root, wd, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("mecli %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestRepoAdd(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)

	out := mustRun(t, root, workDir, "repo", "add", "--path", "tiny", "--description", "Tiny", "--json")
	var info rpc.RepoInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.RepoID != repoTiny {
		t.Fatalf("repo add --json printed %q (%v), want a RepoInfo with repo_id", out, err)
	}
	if !strings.Contains(out, `"repo_id": "`+repoTiny+`"`) {
		t.Errorf("repo add --json: %q has no repo_id member", out)
	}

	// The seed's flags, a positional path, the current directory, ".." —
	// every relative path reaches the daemon absolute and clean.
	mustRun(t, root, workDir, "repo", "add", "/home/u/src/tiny/", "--name", "tiny2")
	mustRun(t, root, workDir, "repo", "add")
	mustRun(t, root, workDir+"/sub", "repo", "add", "--path", "../tiny")
	want := []any{
		rpc.RepoAddParams{Path: workDir + "/tiny", Description: "Tiny"},
		rpc.RepoAddParams{Path: "/home/u/src/tiny", Name: "tiny2"},
		rpc.RepoAddParams{Path: workDir},
		rpc.RepoAddParams{Path: workDir + "/tiny"},
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("the daemon got\n%+v\nwant\n%+v", got, want)
	}

	// Human output: the id on a line of its own.
	out = mustRun(t, root, workDir, "repo", "add", "--path", "tiny")
	if !strings.HasPrefix(out, "Added repository tiny\n") || !strings.Contains(out, "\n  id: "+repoTiny+"\n") ||
		!strings.Contains(out, "  path: "+workDir+"/tiny") ||
		!strings.Contains(out, "  clone with: git clone mega://"+strings.TrimPrefix(repoTiny, "did:repo:")+"\n") {
		t.Errorf("repo add printed %q", out)
	}

	if code, _, errOut := mecli(t, root, workDir, "repo", "add", "a", "--path", "b"); code != 2 || !strings.Contains(errOut, "given twice") {
		t.Errorf("two paths: exit %d, %q", code, errOut)
	}
}

func TestRepoList(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	out := mustRun(t, root, workDir, "repo", "list")
	want := []struct{ name, id, status, under string }{
		{"../evil", repoEvil, "not replicated", ""},
		{"hello", repoHello, "HAS UPDATES     Hello, world in man…", "  clone " + helloCopy + ": up to date"},
		{"notes", repoNotes, "up to date", "  clone /home/u/notes: behind: mecli repo pull updates it"},
		{"tiny", repoTiny, "up to date      Tiny", "  shared from /home/u/src/tiny"},
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 1+len(want)+3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME ID CREATOR HOLDERS STATUS DESCRIPTION" {
		t.Fatalf("repo list printed\n%s", out)
	}
	rows := lines[1:]
	for _, w := range want { // sorted by name, each row followed by its working copies
		row := rows[0]
		if f := strings.Fields(row); f[0] != w.name || f[1] != shortRepoID(w.id) || !strings.HasSuffix(row, "  "+w.status) {
			t.Errorf("row %q, want %s %s … %s", row, w.name, shortRepoID(w.id), w.status)
		}
		rows = rows[1:]
		if w.under != "" {
			if rows[0] != w.under {
				t.Errorf("under %s: %q, want %q", w.name, rows[0], w.under)
			}
			rows = rows[1:]
		}
	}
	if hello := lines[2]; !strings.Contains(hello, "  "+shortDID(didCarol)+"  ") || !strings.Contains(hello, "  0/3  ") {
		t.Errorf("the hello row lacks its short creator or holder count: %q", hello)
	}
	if notes := lines[4]; !strings.Contains(notes, "  bob  ") {
		t.Errorf("the notes row does not name its creator by alias: %q", notes)
	}
	checkWidth(t, out)

	wide := mustRun(t, root, workDir, "repo", "list", "--wide")
	for _, s := range []string{repoHello, didCarol, "Hello, world in many languages", "DESCRIPTION"} {
		if !strings.Contains(wide, s) {
			t.Errorf("repo list --wide lacks %q:\n%s", s, wide)
		}
	}

	out = mustRun(t, root, workDir, "repo", "list", "--json")
	var repos []rpc.RepoInfo
	if err := json.Unmarshal([]byte(out), &repos); err != nil || len(repos) != 4 || repos[1].Replica != rpc.ReplicaBehind {
		t.Fatalf("repo list --json printed %q (%v)", out, err)
	}
}

// checkWidth fails the test if a line of out is wider than an 80-column terminal.
func checkWidth(t *testing.T, out string) {
	t.Helper()
	for l := range strings.Lines(out) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(l, "\n")); n > listWidth {
			t.Errorf("a line of %d columns:\n%s", n, l)
		}
	}
}

// Long names, aliases, paths and reasons are cut to fit 80 columns, the
// end of a path and the start of a reason kept; --wide keeps them whole.
func TestRepoListFitsTheTerminal(t *testing.T) {
	long := "/home/u/" + strings.Repeat("deeply/nested/", 6) + "copy"
	reason := "not a git repository: " + long + ": stat " + long + ": permission denied"
	r := rpc.RepoInfo{
		RepoID: repoTiny, Name: "a-repository-with-a-very-long-name", Creator: didAlice, Holders: []string{didAlice, didBob},
		HoldersInSync: 1, Replica: rpc.ReplicaBehind, Local: true, Path: "/home/u/src/tiny",
		Clones: []rpc.CloneStatus{{Path: long, Status: rpc.CloneError, Reason: reason}, {Path: long, Status: rpc.CloneDiverged}},
	}
	broken := rpc.RepoInfo{RepoID: repoNotes, Name: "notes", Creator: didBob, Replica: rpc.ReplicaWorkError, Local: true,
		Path: long, LastError: "the working repository cannot be read: " + reason}
	aliases := map[string]string{didAlice: "alice-with-a-long-alias"}
	var narrow, wide bytes.Buffer
	writeRepoList(&narrow, []rpc.RepoInfo{r, broken}, aliases, listStyle{home: "/home/u"})
	writeRepoList(&wide, []rpc.RepoInfo{r, broken}, aliases, listStyle{home: "/home/u", wide: true})
	checkWidth(t, narrow.String())
	lines := strings.Split(strings.TrimRight(narrow.String(), "\n"), "\n")
	if len(lines) != 8 || !strings.HasSuffix(lines[5], "  CANNOT PUBLISH") || !strings.HasPrefix(lines[6], "  shared from …") ||
		!strings.HasPrefix(lines[7], "    ERROR: the working repository cannot be read: not a git") {
		t.Errorf("an unreadable shared repository is listed as\n%s", strings.Join(lines[5:], "\n"))
	}
	if len(lines) < 5 {
		t.Fatalf("repo list printed\n%s", narrow.String())
	}
	for i, want := range []string{"a-repository-with…", "alice-with-…", "1/2", "HAS UPDATES"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %d lacks %q: %q", i, want, lines[1])
		}
	}
	if lines[2] != "  shared from ~/src/tiny" {
		t.Errorf("shared line %q", lines[2])
	}
	if !strings.HasPrefix(lines[3], "  clone …") || !strings.Contains(lines[3], "nested/copy: ERROR: not a git repository: ") {
		t.Errorf("error line %q", lines[3])
	}
	if !strings.HasPrefix(lines[4], "  clone …") || !strings.HasSuffix(lines[4], "nested/copy: DIVERGED: local and upstream commits") {
		t.Errorf("diverged line %q", lines[4])
	}
	// A terminal of 50 columns, and one of 140 where the long name fits.
	var at50, at140 bytes.Buffer
	writeRepoList(&at50, []rpc.RepoInfo{r, broken}, aliases, listStyle{home: "/home/u", width: listWidthFor(&at50, "50")})
	writeRepoList(&at140, []rpc.RepoInfo{r, broken}, aliases, listStyle{home: "/home/u", width: listWidthFor(&at140, "140")})
	for _, l := range strings.Split(strings.TrimRight(at50.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 50 {
			t.Errorf("a line of %d runes at COLUMNS=50: %q", n, l)
		}
	}
	if !strings.Contains(at140.String(), "nested/copy: ERROR: not a git repository: /home/u/deeply") {
		t.Errorf("at 140 columns the reason is still cut:\n%s", at140.String())
	}
	if listWidthFor(&at50, "") != listWidth || listWidthFor(&at50, "10") != minListWidth {
		t.Error("without a terminal or $COLUMNS the list keeps to 80 columns; never under 40")
	}
	for _, s := range []string{r.Name, "alice-with-a-long-alias", didAlice, "  clone ~/" + strings.Repeat("deeply/nested/", 6) + "copy: ERROR: " + reason} {
		if !strings.Contains(wide.String(), s) {
			t.Errorf("repo list --wide lacks %q:\n%s", s, wide.String())
		}
	}
}

func TestRepoShow(t *testing.T) {
	root := startDaemon(t, newFakeDaemon())
	out := mustRun(t, root, workDir, "repo", "show", repoHello)
	for _, want := range []string{
		"hello\n", "  Hello, world\n  in many languages\n", repoHello, didCarol, "main", "HAS UPDATES",
		"url:             mega://" + strings.TrimPrefix(repoHello, "did:repo:") + "\n",
		helloCopy + " (main, up to date)", didCarol + " (canonical)\n", "refs/heads/main", "1f7a3c9",
		didBob + " (bob)\n", "refs/heads/feature/german  d4e8a2c",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("repo show lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, didBob+" (bob)"); n < 2 {
		t.Errorf("repo show names bob by alias %d times (holders, namespace), want 2:\n%s", n, out)
	}
	for _, arg := range []string{strings.TrimPrefix(repoHello, "did:repo:"), "mega://" + repoHello + "/"} {
		out = mustRun(t, root, workDir, "repo", "show", "--json", arg)
		var d rpc.RepoDetail
		if err := json.Unmarshal([]byte(out), &d); err != nil || d.RepoID != repoHello || len(d.Namespaces) != 2 {
			t.Fatalf("repo show --json %s printed %q (%v)", arg, out, err)
		}
	}
	// A namespace is for repo clone only.
	code, _, errOut := mecli(t, root, workDir, "repo", "show", "mega://"+repoHello+"/"+didBob)
	if code != 2 || !strings.Contains(errOut, "names the namespace of "+didBob+"; only 'mecli repo clone' takes one") {
		t.Errorf("repo show with a fork's URL: exit %d, %q", code, errOut)
	}
}

func TestRepoSync(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	out := mustRun(t, root, workDir, "repo", "sync", repoHello)
	if want := "Synced: 1 namespace updated from " + didCarol + " (12.3 KiB)\n"; out != want {
		t.Errorf("repo sync printed %q, want %q", out, want)
	}
	if out := mustRun(t, root, workDir, "repo", "sync", repoTiny); out != "Already up to date\n" {
		t.Errorf("repo sync of an up-to-date repository printed %q", out)
	}
	out = mustRun(t, root, workDir, "--json", "repo", "sync", repoHello)
	var res rpc.SyncResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Updated || res.Bytes != 12629 {
		t.Errorf("repo sync --json printed %q (%v)", out, err)
	}
}

func TestRepoClone(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	forms := [][]string{
		{"repo", "clone", "--repo-id", repoHello, "--output", "./hello"}, // the seed's
		{"repo", "clone", repoHello, "hello"},
		{"repo", "clone", "--repo-id", repoHello, "hello"},
		{"repo", "clone", strings.TrimPrefix(repoHello, "did:repo:"), workDir + "/x/../hello"},
		{"repo", "clone", repoHello}, // the directory is named after the repository
		// A mega:// URL, as git clone takes it.
		{"repo", "clone", "mega://" + strings.TrimPrefix(repoHello, "did:repo:"), "hello"},
		{"repo", "clone", "--repo-id", "mega://" + repoHello, "hello"},
	}
	for _, args := range forms {
		out := mustRun(t, root, workDir, args...)
		if want := "Cloned hello into " + helloCopy + " (branch main at 1f7a3c9)\n"; out != want {
			t.Errorf("%v printed %q, want %q", args, out, want)
		}
	}
	want := rpc.RepoCloneParams{RepoID: repoHello, Path: helloCopy}
	calls := f.takeCalls()
	if len(calls) != len(forms) {
		t.Fatalf("the daemon got %d clone calls, want %d: %+v", len(calls), len(forms), calls)
	}
	for i, c := range calls {
		if c != want {
			t.Errorf("%v sent %+v, want %+v", forms[i], c, want)
		}
	}

	out := mustRun(t, root, workDir, "repo", "clone", repoHello, "--namespace", didBob, "--json")
	var res rpc.CloneResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Path != helloCopy || res.Head != headOld {
		t.Errorf("repo clone --json printed %q (%v)", out, err)
	}
	if got := f.takeCalls(); len(got) != 1 || got[0].(rpc.RepoCloneParams).Namespace != didBob {
		t.Errorf("repo clone --namespace sent %+v", got)
	}
	// A fork's URL names the namespace, as for git clone; --namespace may
	// say it again, not otherwise.
	forkURL := "mega://" + strings.TrimPrefix(repoHello, "did:repo:") + "/" + strings.TrimPrefix(didBob, "did:key:")
	mustRun(t, root, workDir, "repo", "clone", forkURL)
	mustRun(t, root, workDir, "repo", "clone", forkURL, "hello", "--namespace", didBob)
	for _, c := range f.takeCalls() {
		if c != (rpc.RepoCloneParams{RepoID: repoHello, Path: helloCopy, Namespace: didBob}) {
			t.Errorf("repo clone %s sent %+v", forkURL, c)
		}
	}
	if code, _, errOut := mecli(t, root, workDir, "repo", "clone", forkURL, "--namespace", didCarol); code != 2 ||
		!strings.Contains(errOut, "the namespace is given twice") {
		t.Errorf("repo clone with two namespaces: exit %d, %q", code, errOut)
	}

	// A repository whose name would lead out of the current directory
	// needs a directory; nothing is cloned.
	code, _, errOut := mecli(t, root, workDir, "repo", "clone", repoEvil)
	if code != 1 || !strings.Contains(errOut, "cannot name a directory") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("clone of %q: exit %d, %q", "../evil", code, errOut)
	}
	if got := f.takeCalls(); len(got) != 0 {
		t.Errorf("the daemon was asked to clone: %+v", got)
	}

	for _, args := range [][]string{
		{"repo", "clone"},
		{"repo", "clone", "--output", "x"},
		{"repo", "clone", repoHello, "a", "b"},
		{"repo", "clone", "--repo-id", repoHello, repoTiny},
		{"repo", "clone", repoHello, "a", "--output", "b"},
	} {
		if code, _, _ := mecli(t, root, workDir, args...); code != 2 {
			t.Errorf("%v: exit %d, want a usage error", args, code)
		}
	}
}

func TestRepoPull(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	for _, tc := range []struct {
		name string
		wd   string
		args []string
		want rpc.RepoPullParams
	}{
		{"in a working copy", helloCopy, nil, rpc.RepoPullParams{Path: helloCopy}},
		{"in a subdirectory of one", helloCopy + "/src/lib", nil, rpc.RepoPullParams{Path: helloCopy}},
		{"in an unknown directory", "/home/u/other", nil, rpc.RepoPullParams{Path: "/home/u/other"}},
		{"with an id, inside", helloCopy, []string{repoHello}, rpc.RepoPullParams{RepoID: repoHello, Path: helloCopy}},
		{"the seed's form, elsewhere", "/home/u", []string{"--repo-id", repoHello}, rpc.RepoPullParams{RepoID: repoHello, Path: helloCopy}},
		{"a repository without clones", "/home/u/w", []string{repoTiny}, rpc.RepoPullParams{RepoID: repoTiny, Path: "/home/u/w"}},
		{"--path", workDir, []string{"--path", "../other/"}, rpc.RepoPullParams{Path: "/home/u/other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, root, tc.wd, append([]string{"repo", "pull"}, tc.args...)...)
			if got := f.takeCalls(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("the daemon got %+v, want %+v", got, tc.want)
			}
			if out != "Updated main: 1f7a3c9..d4e8a2c\n" {
				t.Errorf("repo pull printed %q", out)
			}
		})
	}
	if out := mustRun(t, root, "/home/u/notes", "repo", "pull"); out != "Already up to date\n" {
		t.Errorf("an up-to-date pull printed %q", out)
	}
	f.takeCalls()
	out := mustRun(t, root, helloCopy, "repo", "pull", "--json")
	var res rpc.PullResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Updated || res.Head != headNew {
		t.Errorf("repo pull --json printed %q (%v)", out, err)
	}
}

// With several working copies and none around, repo pull --repo-id asks
// which one.
func TestRepoPullAmbiguous(t *testing.T) {
	f := newFakeDaemon()
	f.repos[1].Clones = append(f.repos[1].Clones, rpc.CloneStatus{Path: "/home/u/hello-2", Branch: "main"})
	root := startDaemon(t, f)
	code, _, errOut := mecli(t, root, "/home/u", "repo", "pull", "--repo-id", repoHello)
	if code != 1 || !strings.Contains(errOut, "2 working copies") || !strings.Contains(errOut, "--path") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if got := f.takeCalls(); len(got) != 0 {
		t.Errorf("the daemon was asked to pull: %+v", got)
	}
}

func TestRepoSeedUnseed(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	if out := mustRun(t, root, workDir, "repo", "seed", repoNotes); !strings.HasPrefix(out, "Seeding notes ("+repoNotes+")") {
		t.Errorf("repo seed printed %q", out)
	}
	out := mustRun(t, root, workDir, "repo", "unseed", repoNotes, "--json")
	var info rpc.RepoInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Seeded {
		t.Errorf("repo unseed --json printed %q (%v)", out, err)
	}
	got := f.takeCalls()
	if len(got) != 2 || !reflect.ValueOf(got[0]).Field(1).Bool() || reflect.ValueOf(got[1]).Field(1).Bool() {
		t.Errorf("the daemon got %+v, want seed then unseed", got)
	}
}

// repo seed-request lists every answer with its reason; fewer replicas in
// sync than asked for is exit status 1; bad flags never reach the daemon.
func TestRepoSeedRequest(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	out := mustRun(t, root, workDir, "repo", "seed-request", repoNotes, "--replicas", "1", "--wait", "5s")
	for _, want := range []string{"accepted: seeding", "not-accepting: this node takes no seed requests", "1 accepted; 1 of 1 replicas in sync"} {
		if !strings.Contains(out, want) {
			t.Errorf("repo seed-request printed %q, without %q", out, want)
		}
	}
	got := f.takeCalls()
	if p, ok := got[0].(rpc.SeedRequestParams); len(got) != 1 || !ok || p.Replicas != 1 || p.WaitSeconds == nil || *p.WaitSeconds != 5 {
		t.Errorf("the daemon got %+v", got)
	}
	code, _, errOut := mecli(t, root, workDir, "repo", "seed-request", repoNotes, "--replicas", "2")
	if code != 1 || !strings.Contains(errOut, "1 of 2 replicas in sync") {
		t.Errorf("too few in sync: exit %d, %q", code, errOut)
	}
	f.takeCalls()
	if code, _, errOut := mecli(t, root, workDir, "repo", "seed-request", repoNotes, "--replicas", "17"); code != 2 || !strings.Contains(errOut, "1-16") {
		t.Errorf("--replicas 17: exit %d, %q", code, errOut)
	}
	if got := f.takeCalls(); len(got) != 0 {
		t.Errorf("a bad flag reached the daemon: %+v", got)
	}
}

// Errors are one line on stderr and exit status 1.
func TestRepoErrors(t *testing.T) {
	root := startDaemon(t, newFakeDaemon())
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"repo", "show", repoMissing}, "mecli repo show: repository " + repoMissing + " not found"},
		{[]string{"repo", "sync", repoMissing}, "not found"},
		{[]string{"repo", "clone", repoMissing}, "not found"},
		{[]string{"repo", "seed", repoMissing, "--json"}, "not found"},
		{[]string{"repo", "add", "/home/u/Documents"}, "/home/u/Documents is not a git repository"},
		{[]string{"repo", "show", "did:repo:nonsense"}, "invalid repository id"},
		{[]string{"repo", "sync", "mega://nonsense"}, `invalid URL "mega://nonsense": "nonsense" is not a repository id`},
		{[]string{"repo", "clone", repoHello, "--namespace", "bob"}, "invalid --namespace"},
	} {
		code, out, errOut := mecli(t, root, workDir, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tc.args, code, out, errOut, tc.msg)
		}
	}
}

// Without a daemon: the client's one-line hint; a usage error comes first.
func TestRepoNoDaemon(t *testing.T) {
	root, err := os.MkdirTemp("", "me")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	code, _, errOut := mecli(t, root, workDir, "repo", "list")
	if code != 1 || !strings.Contains(errOut, "no daemon running") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("repo list without a daemon: exit %d, %q", code, errOut)
	}
	// Without an id, repo show asks the daemon which repository the current
	// directory belongs to: that needs the daemon too.
	if code, _, errOut := mecli(t, root, workDir, "repo", "show"); code != 1 || !strings.Contains(errOut, "no daemon running") {
		t.Errorf("repo show without an id: exit %d, %q", code, errOut)
	}
	if code, _, errOut := mecli(t, root, workDir, "repo"); code != 2 || !strings.Contains(errOut, "repo clone") || !strings.Contains(errOut, "repo unseed") {
		t.Errorf("repo alone: exit %d, %q", code, errOut)
	}
}

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	l := &progressLine{w: &buf}
	l.update(rpc.Progress{Done: 5684, Total: 12629, Message: "receiving objects"})
	l.update(rpc.Progress{Done: 1, Total: 1, Message: "done"})
	l.clear()
	first := "\rreceiving objects:  45% (5684/12629)"
	second := "\rdone: 100% (1/1)" + strings.Repeat(" ", len(first)-1-len("done: 100% (1/1)"))
	if want := first + second + "\r" + strings.Repeat(" ", len(first)-1) + "\r"; buf.String() != want {
		t.Errorf("drew %q, want %q", buf.String(), want)
	}

	var nilLine *progressLine // what a command gets when stderr is not a terminal
	nilLine.update(rpc.Progress{Done: 1})
	nilLine.clear()

	long := progressText(rpc.Progress{Done: 1 << 40, Total: 1 << 41, Message: strings.Repeat("é", 200) + "\x1b[2J"}, 0)
	if n := utf8.RuneCountInString(long); n > progressWidth || !strings.HasSuffix(long, "…:  50% (1099511627776/2199023255552)") {
		t.Errorf("long line (%d runes): %q", n, long)
	}
	if s := progressText(rpc.Progress{Done: 3, Message: "receiving objects from " + didCarol}, 0); s != "receiving objects from …bU4hhvjP: 3 B" {
		t.Errorf("progress naming a node: %q", s)
	}
	if s := progressText(rpc.Progress{Message: "evil\x1b]0;title\a"}, 0); strings.ContainsAny(s, "\x1b\a") {
		t.Errorf("control characters reach the terminal: %q", s)
	}
	if isTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 12629: "12.3 KiB", 4 << 20: "4.0 MiB", 3 << 40: "3072.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// repo show, sync, seed and unseed without an id work on the repository
// the current directory is a working copy of, as repo pull does.
func TestRepoCommandsInferTheRepository(t *testing.T) {
	f := newFakeDaemon()
	root := startDaemon(t, f)
	for _, cmd := range []string{"show", "sync", "seed", "unseed"} {
		f.takeCalls()
		out := mustRun(t, root, helloCopy+"/sub/dir", "repo", cmd, "--json")
		// show is not recorded by the fake: its answer names the repository.
		if got := fmt.Sprint(f.takeCalls()) + out; !strings.Contains(got, repoHello) {
			t.Errorf("repo %s in a clone of hello: the daemon got and answered %s", cmd, got)
		}
	}
	code, _, errOut := mecli(t, root, "/tmp", "repo", "show")
	if code != 2 || !strings.Contains(errOut, "is not in a working copy") {
		t.Errorf("repo show outside any working copy: exit %d, %q", code, errOut)
	}
}

// repo show says on whose request the node seeds a repository.
func TestSeededText(t *testing.T) {
	for _, tc := range []struct {
		info rpc.RepoInfo
		want string
	}{
		{rpc.RepoInfo{}, "no"},
		{rpc.RepoInfo{Seeded: true}, "yes"},
		{rpc.RepoInfo{Seeded: true, SeedRequester: "did:key:z6MkwSD8dBdqcXQzKJZQFPy2hh2izzxskndKCjdmC2dBpfME"}, "yes, asked by did:key:z6MkwSD8dBdqcXQzKJZQFPy2hh2izzxskndKCjdmC2dBpfME"},
	} {
		if got := seededText(tc.info); got != tc.want {
			t.Errorf("seededText(%+v) = %q, want %q", tc.info, got, tc.want)
		}
	}
}
