package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/rpc"
)

const (
	testRepo = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp"
	testNode = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // RFC 8032 test 1
)

// fakeDaemon serves the three methods the helper calls; the embedded nil
// Service makes any other call fail (the server recovers the panic).
type fakeDaemon struct {
	rpc.Service

	syncErr    error
	locateErr  error
	publishErr error
	loc        rpc.LocateResult

	mu    sync.Mutex
	calls []any
}

func (f *fakeDaemon) record(p any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
}

func (f *fakeDaemon) methods() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeDaemon) RepoSync(ctx context.Context, p rpc.RepoIDParams, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	f.record(p)
	if f.syncErr != nil {
		return rpc.SyncResult{}, f.syncErr
	}
	progress(512, 0, "receiving objects")
	return rpc.SyncResult{RepoID: p.RepoID, Updated: true, From: testNode, Namespaces: 1, Bytes: 512}, nil
}

func (f *fakeDaemon) RepoLocate(ctx context.Context, p rpc.RepoLocateParams) (rpc.LocateResult, error) {
	f.record(p)
	if f.locateErr != nil {
		return rpc.LocateResult{}, f.locateErr
	}
	return f.loc, nil
}

func (f *fakeDaemon) RepoPublish(ctx context.Context, p rpc.RepoIDParams) (rpc.PublishResult, error) {
	f.record(p)
	if f.publishErr != nil {
		return rpc.PublishResult{}, f.publishErr
	}
	return rpc.PublishResult{RepoID: p.RepoID, Updated: true, Seq: 7, Refs: []rpc.RefInfo{{Name: "refs/heads/main", OID: strings.Repeat("a", 40)}}}, nil
}

// shortDir is a temporary directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "grm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveFake runs f on a control socket in a new root and returns the root.
func serveFake(t *testing.T, f *fakeDaemon) string {
	t.Helper()
	root := shortDir(t)
	ln, err := rpc.Listen(rpc.SocketPath(root))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rpc.NewServer(f, nil).Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return root
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const testNS = "z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"

// replica makes a bare repository whose namespace testNS has one commit on
// main, with HEAD pointing to it, and another namespace with a branch the
// helper must not show.
func replica(t *testing.T) (dir, head string) {
	t.Helper()
	tmp := t.TempDir()
	work := filepath.Join(tmp, "work")
	git(t, tmp, "init", "-q", "-b", "main", work)
	os.WriteFile(filepath.Join(work, "a"), []byte("a\n"), 0o644)
	git(t, work, "add", "a")
	git(t, work, "commit", "-q", "-m", "a")
	head = git(t, work, "rev-parse", "HEAD")
	dir = filepath.Join(tmp, "replica.git")
	git(t, tmp, "init", "-q", "--bare", dir)
	git(t, dir, "fetch", "-q", work, "main:refs/namespaces/"+testNS+"/refs/heads/main", "main:refs/namespaces/zOther/refs/heads/secret")
	git(t, dir, "symbolic-ref", "refs/namespaces/"+testNS+"/HEAD", "refs/namespaces/"+testNS+"/refs/heads/main")
	return dir, head
}

// runHelper runs the helper with the given arguments and input and returns
// its exit status, stdout and stderr.
func runHelper(t *testing.T, root string, input string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := append(os.Environ(), "MEGAENGINE_ROOT="+root, "GIT_DIR=/nonexistent/.git", "GIT_CONFIG_PARAMETERS='uploadpack.hiderefs'='refs/'")
	h := newHelper(strings.NewReader(input), &out, &errOut, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := h.run(ctx, args)
	for _, bad := range []string{"panic", "goroutine", ".go:"} {
		if strings.Contains(errOut.String(), bad) {
			t.Errorf("the helper printed %q:\n%s", bad, errOut.String())
		}
	}
	return code, out.String(), errOut.String()
}

var testURL = "mega://" + strings.TrimPrefix(testRepo, "did:repo:")

func TestCapabilitiesAndOptions(t *testing.T) {
	code, out, errOut := runHelper(t, shortDir(t),
		"capabilities\noption progress false\noption verbosity 0\noption depth 1\noption verbosity x\n\n", "origin", testURL)
	want := "option\nconnect\nfetch\ncheck-connectivity\n\n" + "ok\n" + "ok\n" + "unsupported\n" + "error invalid verbosity \"x\"\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, %q, nothing", code, out, errOut, want)
	}
	// git closing the stream is the end too.
	if code, out, errOut := runHelper(t, shortDir(t), "", "origin", testURL); code != 0 || out != "" || errOut != "" {
		t.Errorf("on EOF: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestFailures(t *testing.T) {
	noDaemon := shortDir(t)
	for _, tc := range []struct {
		name, input string
		args        []string
		code        int
		stderr      string
	}{
		{"no arguments", "", nil, exitUsage, "mega: usage: git-remote-mega <remote> [<url>]"},
		{"bad URL", "capabilities\n", []string{"origin", "mega://not-an-id"}, exitFatal,
			`fatal: mega: invalid URL "mega://not-an-id": "not-an-id" is not a repository id`},
		{"unknown command", "capabilities\nlist\n", []string{"origin", testURL}, exitFatal, `fatal: mega: git sent the unknown command "list"`},
		{"archive", "connect git-upload-archive\n", []string{"origin", testURL}, exitFatal, "git archive --remote is not supported"},
		{"no daemon, fetch", "capabilities\nconnect git-upload-pack\n", []string{"origin", testURL}, exitFatal,
			"fatal: mega: no daemon running for root " + noDaemon},
		{"no daemon, push", "connect git-receive-pack\n", []string{testURL, testURL}, exitFatal, "fatal: mega: no daemon running"},
		{"partial line", "capabil", []string{"origin", testURL}, exitFatal, "fatal: mega: reading git's command"},
		{"long line", strings.Repeat("x", maxLine+1) + "\n", []string{"origin", testURL}, exitFatal, "longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runHelper(t, noDaemon, tc.input, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line with %q", code, errOut, tc.code, tc.stderr)
			}
			want := "" // in particular, no blank line saying the connection is up
			if strings.HasPrefix(tc.input, "capabilities\n") && tc.args != nil && !strings.Contains(tc.args[1], "not-an-id") {
				want = "option\nconnect\nfetch\ncheck-connectivity\n\n"
			}
			if out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
		})
	}
}

// A fetch: sync, locate, a blank line, then upload-pack of the namespace
// speaks on the helper's stdout; other namespaces and git's own repository
// (GIT_DIR) are invisible.
func TestFetch(t *testing.T) {
	dir, head := replica(t)
	f := &fakeDaemon{loc: rpc.LocateResult{RepoID: testRepo, GitDir: dir, Namespace: testNS, Node: testNode, DefaultBranch: "main", Self: testNode}}
	root := serveFake(t, f)
	code, out, errOut := runHelper(t, root, "capabilities\noption verbosity 1\nconnect git-upload-pack\n0000", "origin", testURL+"/"+testNode)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	prefix := "option\nconnect\nfetch\ncheck-connectivity\n\nok\n\n"
	if !strings.HasPrefix(out, prefix) {
		t.Fatalf("stdout %q does not start with %q", out, prefix)
	}
	adv := out[len(prefix):]
	for _, want := range []string{head + " HEAD\x00", head + " refs/heads/main\n", "symref=HEAD:refs/heads/main"} {
		if !strings.Contains(adv, want) {
			t.Errorf("upload-pack's advertisement %q lacks %q", adv, want)
		}
	}
	if strings.Contains(adv, "secret") || strings.Contains(adv, "namespaces") {
		t.Errorf("the advertisement shows another namespace: %q", adv)
	}
	if want := "mega: received 1 namespace of " + testRepo + " from " + testNode + "\n"; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}
	// The locate names the working copy git fetches into (GIT_DIR's parent),
	// so the node records it as a clone.
	want := []any{rpc.RepoIDParams{RepoID: testRepo}, rpc.RepoLocateParams{RepoID: testRepo, Namespace: testNode, WorkTree: "/nonexistent", Hold: true}}
	if got := f.methods(); !slices.Equal(got, want) {
		t.Errorf("the daemon got %+v, want %+v", got, want)
	}
}

// A failed sync with a replica is one warning, and the fetch goes on.
func TestFetchOffline(t *testing.T) {
	dir, head := replica(t)
	f := &fakeDaemon{
		syncErr: rpc.Errorf(rpc.CodeUnavailable, "could not fetch %s: a: timeout\nb: refused", testRepo),
		loc:     rpc.LocateResult{RepoID: testRepo, GitDir: dir, Namespace: testNS, Node: testNode, DefaultBranch: "main", Self: testNode},
	}
	root := serveFake(t, f)
	code, out, errOut := runHelper(t, root, "capabilities\nconnect git-upload-pack\n0000", "origin", testURL)
	if code != 0 || !strings.Contains(out, head+" refs/heads/main") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := "warning: mega: could not sync " + testRepo + " from the network (could not fetch " + testRepo +
		": a: timeout; b: refused); fetching from this node's replica, which may be behind\n"
	if errOut != want {
		t.Errorf("stderr\n%q\nwant\n%q", errOut, want)
	}
}

// Without a replica a failed sync is the one line the user sees.
func TestFetchNotHeld(t *testing.T) {
	f := &fakeDaemon{
		syncErr:   rpc.Errorf(rpc.CodeNotFound, "no node is known to hold %s", testRepo),
		locateErr: rpc.Errorf(rpc.CodeNotFound, "this node holds no replica of %s", testRepo),
	}
	root := serveFake(t, f)
	code, out, errOut := runHelper(t, root, "capabilities\nconnect git-upload-pack\n", "origin", testURL)
	if code == 0 || out != "option\nconnect\nfetch\ncheck-connectivity\n\n" || errOut != "fatal: mega: no node is known to hold "+testRepo+"\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A push: locate own, receive-pack with the namespace, then publish.
func TestPush(t *testing.T) {
	dir, head := replica(t)
	f := &fakeDaemon{loc: rpc.LocateResult{RepoID: testRepo, GitDir: dir, Namespace: testNS, Node: testNode, DefaultBranch: "main", Self: testNode}}
	root := serveFake(t, f)
	code, out, errOut := runHelper(t, root, "capabilities\nconnect git-receive-pack\n0000", "origin", testURL)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, "option\nconnect\nfetch\ncheck-connectivity\n\n\n") || !strings.Contains(out, head+" refs/heads/main\n") {
		t.Errorf("stdout %q: want the connect reply, then receive-pack's advertisement of the namespace", out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("receive-pack shows another namespace: %q", out)
	}
	if want := "mega: published 1 ref of " + testRepo + " (seq 7)\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	want := []any{rpc.RepoLocateParams{RepoID: testRepo, Own: true}, rpc.RepoIDParams{RepoID: testRepo}}
	if got := f.methods(); !slices.Equal(got, want) {
		t.Errorf("the daemon got %+v, want %+v", got, want)
	}
}

// A refused push is refused before receive-pack runs.
func TestPushRefused(t *testing.T) {
	f := &fakeDaemon{locateErr: rpc.Errorf(rpc.CodePermission, "you can only push to your own namespace (%s)", testNode)}
	root := serveFake(t, f)
	code, out, errOut := runHelper(t, root, "capabilities\nconnect git-receive-pack\n", "origin", testURL+"/z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT")
	if code == 0 || out != "option\nconnect\nfetch\ncheck-connectivity\n\n" || errOut != "fatal: mega: you can only push to your own namespace ("+testNode+")\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := f.methods(); len(got) != 1 || got[0].(rpc.RepoLocateParams).Namespace != "did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT" {
		t.Errorf("the daemon got %+v", got)
	}
}

// A push that could not be published says so, and git reports a failure.
func TestPushNotPublished(t *testing.T) {
	dir, _ := replica(t)
	f := &fakeDaemon{
		loc:        rpc.LocateResult{RepoID: testRepo, GitDir: dir, Namespace: testNS, Node: testNode, DefaultBranch: "main", Self: testNode},
		publishErr: rpc.Errorf(rpc.CodeInvalidArgument, "cannot publish %q", "refs/heads/x"),
	}
	root := serveFake(t, f)
	code, _, errOut := runHelper(t, root, "connect git-receive-pack\n0000", "origin", testURL)
	want := `fatal: mega: the push is in this node's replica but not published (cannot publish "refs/heads/x"); push again to publish it` + "\n"
	if code == 0 || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// What the daemon says is checked before git runs on it.
func TestBadLocation(t *testing.T) {
	for _, loc := range []rpc.LocateResult{
		{RepoID: testRepo, GitDir: "relative.git", Namespace: testNS},
		{RepoID: testRepo, GitDir: "/tmp/x.git", Namespace: testNS + "/refs"},
		{RepoID: testRepo, GitDir: "/tmp/x.git", Namespace: ""},
	} {
		root := serveFake(t, &fakeDaemon{loc: loc})
		code, out, errOut := runHelper(t, root, "capabilities\nconnect git-upload-pack\n", "origin", testURL)
		if code == 0 || out != "option\nconnect\nfetch\ncheck-connectivity\n\n" || !strings.HasSuffix(errOut, "not an absolute path\n") && !strings.HasSuffix(errOut, "not a node id\n") {
			t.Errorf("%+v: exit %d, stdout %q, stderr %q", loc, code, out, errOut)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	env := serviceEnv([]string{"PATH=/bin", "HOME=/home/u", "GIT_DIR=.git", "GIT_PROTOCOL=version=2", "GIT_NAMESPACE=evil",
		"GIT_CONFIG_PARAMETERS='a.b'='c'", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=a.b", "GIT_CONFIG_VALUE_0=c",
		"GIT_OBJECT_DIRECTORY=/x", "GIT_TRACE_PACKET=1", "GIT_CONFIG_GLOBAL=/home/u/.gitconfig"}, testNS)
	want := []string{"PATH=/bin", "HOME=/home/u", "GIT_PROTOCOL=version=2", "GIT_TRACE_PACKET=1",
		"GIT_NAMESPACE=" + testNS, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull}
	if !slices.Equal(env, want) {
		t.Errorf("serviceEnv:\n got %q\nwant %q", env, want)
	}
}

// readLine leaves what follows the line for the service.
func TestReadLine(t *testing.T) {
	r := strings.NewReader("connect git-upload-pack\n0032want …")
	line, err := readLine(r)
	if err != nil || line != "connect git-upload-pack" {
		t.Fatalf("readLine = %q, %v", line, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "0032want …" {
		t.Errorf("left %q", rest)
	}
	if _, err := readLine(strings.NewReader("no newline")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a line without its newline: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		verbosity int
		progress  bool
		want      string
	}{
		{1, true, "\r\x1b[Kmega: syncing X: receiving objects, 1.5 KiB\r\x1b[Kmega: syncing X: receiving objects, 2.0 MiB\r\x1b[Kmega: syncing X, done.\n"},
		{1, false, ""},
		{0, true, ""},
		{0, false, ""},
	} {
		var buf bytes.Buffer
		h := &helper{errOut: &buf, verbosity: tc.verbosity, progress: tc.progress}
		s := &status{h: h, what: "syncing X"} // no timer: only progress shows it
		s.update(rpc.Progress{Done: 1536, Message: "receiving objects"})
		s.update(rpc.Progress{Done: 2 << 20, Message: "receiving objects"})
		s.done(true)
		s.update(rpc.Progress{Done: 3 << 20, Message: "late"})
		if buf.String() != tc.want {
			t.Errorf("verbosity %d progress %v: %q, want %q", tc.verbosity, tc.progress, buf.String(), tc.want)
		}
	}
	// A quick call shows nothing, even if the timer fires late; a slow
	// one says what it waits for.
	var buf bytes.Buffer
	h := &helper{errOut: &buf, verbosity: 1, progress: true}
	s := h.newStatus("syncing X")
	s.done(true)
	s.fire()
	if buf.String() != "" {
		t.Errorf("a quick call printed %q", buf.String())
	}
	s = h.newStatus("syncing X")
	s.fire()
	s.fire()
	s.done(true)
	if buf.String() != "\r\x1b[Kmega: syncing X\r\x1b[Kmega: syncing X\r\x1b[Kmega: syncing X, done.\n" {
		t.Errorf("a slow call printed %q", buf.String())
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n c\n"); got != "a; b;  c" {
		t.Errorf("oneLine = %q", got)
	}
}

// Run by hand with --version, the helper prints the version the Makefile
// links in (rpc.Version), as med and mecli do, without waiting for git.
func TestVersion(t *testing.T) {
	code, out, errOut := runHelper(t, shortDir(t), "", "--version")
	if want := "git-remote-mega " + rpc.Version + "\n"; code != 0 || out != want {
		t.Fatalf("git-remote-mega --version: exit %d, printed %q (stderr %q), want %q", code, out, errOut, want)
	}
}
