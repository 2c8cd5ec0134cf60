package rpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Every repo method, through the typed client, gives the fixture's answer.
func TestRepoRoundTrip(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx := ctxT(t)

	info, err := c.RepoAdd(ctx, RepoAddParams{Path: pathTiny, Description: "Tiny"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fixtureRepo(repoTiny)
	if !reflect.DeepEqual(info, want) {
		t.Errorf("RepoAdd:\n got %+v\nwant %+v", info, want)
	}
	if got := f.lastRepoCall(); !reflect.DeepEqual(got, RepoAddParams{Path: pathTiny, Description: "Tiny"}) {
		t.Errorf("the service got %+v", got)
	}

	repos, err := c.RepoList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRepos := fixtureRepos()
	wantRepos[2].Clones = []CloneStatus{} // the server sends [] for a nil slice
	if !reflect.DeepEqual(repos, wantRepos) {
		t.Errorf("RepoList:\n got %+v\nwant %+v", repos, wantRepos)
	}

	detail, err := c.RepoShow(ctx, repoExample)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(detail, fixtureDetail()) {
		t.Errorf("RepoShow:\n got %+v\nwant %+v", detail, fixtureDetail())
	}
	detail, err = c.RepoShow(ctx, repoTiny)
	if err != nil || detail.Namespaces == nil || len(detail.Namespaces) != 0 || detail.Name != "tiny" {
		t.Errorf("RepoShow(tiny) = %+v, %v; want no namespaces as an empty slice", detail, err)
	}

	var progress []Progress
	sres, err := c.RepoSync(ctx, repoExample, func(p Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if want := (SyncResult{RepoID: repoExample, Updated: true, From: didCarol, Namespaces: 1, Bytes: 12629}); sres != want {
		t.Errorf("RepoSync = %+v, want %+v", sres, want)
	}
	if len(progress) == 0 || progress[len(progress)-1].Done != 12629 {
		t.Errorf("RepoSync progress %+v: want the final update (12629 bytes) before the answer", progress)
	}
	sres, err = c.RepoSync(ctx, repoTiny, nil)
	if err != nil || sres.Updated || sres.RepoID != repoTiny {
		t.Errorf("RepoSync(tiny) = %+v, %v; want not updated", sres, err)
	}

	clone, err := c.RepoClone(ctx, RepoCloneParams{RepoID: repoExample, Path: pathHello}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (CloneResult{RepoID: repoExample, Path: pathHello, Branch: "main", Head: headHelloOld}); clone != want {
		t.Errorf("RepoClone = %+v, want %+v", clone, want)
	}

	pull, err := c.RepoPull(ctx, RepoPullParams{Path: pathHello}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (PullResult{RepoID: repoExample, Path: pathHello, Branch: "main", Updated: true, Old: headHelloOld, Head: headHello}); pull != want {
		t.Errorf("RepoPull = %+v, want %+v", pull, want)
	}
	if got := f.lastRepoCall(); !reflect.DeepEqual(got, RepoPullParams{Path: pathHello}) {
		t.Errorf("repo.pull without repo_id: the service got %+v", got)
	}

	for _, seed := range []bool{true, false} {
		info, err := c.RepoSeed(ctx, repoNotes, seed)
		if err != nil {
			t.Fatal(err)
		}
		if info.RepoID != repoNotes || info.Seeded != seed || info.Clones == nil {
			t.Errorf("RepoSeed(%v) = %+v", seed, info)
		}
	}
}

// Ids are passed to the Service in canonical form, whatever form the
// caller used.
func TestRepoParamsCanonical(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx := ctxT(t)

	bare := strings.TrimPrefix(repoExample, "did:repo:") // the form of mega:// URLs
	if _, err := c.RepoShow(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRepoCall(); got != (RepoIDParams{RepoID: repoExample}) {
		t.Errorf("repo.show %s: the service got %+v", bare, got)
	}

	bob, err := identity.ParseNodeID(didBob)
	if err != nil {
		t.Fatal(err)
	}
	legacy := "did:key:z" + base58.Encode(append([]byte{0xed}, bob[:]...)) // the seed's form
	if legacy == didBob {
		t.Fatal("test: the legacy form should differ")
	}
	if _, err := c.RepoClone(ctx, RepoCloneParams{RepoID: bare, Path: pathHello, Namespace: legacy}, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRepoCall(); got != (RepoCloneParams{RepoID: repoExample, Path: pathHello, Namespace: didBob}) {
		t.Errorf("repo.clone: the service got %+v", got)
	}

	if _, err := c.RepoPull(ctx, RepoPullParams{RepoID: bare, Path: pathHello}, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRepoCall(); got != (RepoPullParams{RepoID: repoExample, Path: pathHello}) {
		t.Errorf("repo.pull: the service got %+v", got)
	}
}

func TestRepoInvalidParams(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name   string
		method string
		params any
		msg    string
	}{
		{"show without id", MethodRepoShow, map[string]any{}, "repo_id is required"},
		{"show with a bad id", MethodRepoShow, RepoIDParams{RepoID: "did:repo:zzz"}, "invalid repo_id"},
		{"show with a node id", MethodRepoShow, RepoIDParams{RepoID: didCarol}, `does not start with "did:repo:z"`},
		{"show with a long id", MethodRepoShow, RepoIDParams{RepoID: "did:repo:z" + strings.Repeat("1", 5000)}, "longer than"},
		{"show unknown field", MethodRepoShow, map[string]any{"repo": repoExample}, `unknown field "repo"`},
		{"show by position", MethodRepoShow, []string{repoExample}, "params must be a JSON object"},
		{"list with params", MethodRepoList, map[string]any{"all": true}, "repo.list takes no params"},
		{"add without path", MethodRepoAdd, RepoAddParams{Description: "x"}, "path is required: path must be absolute"},
		{"add relative path", MethodRepoAdd, RepoAddParams{Path: "src/tiny"}, `invalid path "src/tiny": path must be absolute`},
		{"add dot path", MethodRepoAdd, RepoAddParams{Path: "."}, "path must be absolute"},
		{"add unclean path", MethodRepoAdd, RepoAddParams{Path: "/home/alice/src/../src/tiny/"}, `must be absolute and clean ("/home/alice/src/tiny")`},
		{"add NUL in path", MethodRepoAdd, RepoAddParams{Path: "/home/alice/\x00"}, "NUL"},
		{"add name with newline", MethodRepoAdd, RepoAddParams{Path: pathTiny, Name: "ti\nny"}, "invalid: name must be 1-100 bytes"},
		{"add long name", MethodRepoAdd, RepoAddParams{Path: pathTiny, Name: strings.Repeat("n", 101)}, "name must be 1-100 bytes"},
		{"add long description", MethodRepoAdd, RepoAddParams{Path: pathTiny, Description: strings.Repeat("d", 1001)}, "invalid: description must be at most 1000 bytes"},
		{"add description with escape", MethodRepoAdd, RepoAddParams{Path: pathTiny, Description: "\x1b[31mred"}, "description must be"},
		{"add misspelt field", MethodRepoAdd, map[string]any{"path": pathTiny, "descripton": "x"}, `unknown field "descripton"`},
		{"sync bad id", MethodRepoSync, RepoIDParams{RepoID: "hello"}, "invalid repo_id"},
		{"clone without id", MethodRepoClone, RepoCloneParams{Path: pathHello}, "repo_id is required"},
		{"clone without path", MethodRepoClone, RepoCloneParams{RepoID: repoExample}, "path is required"},
		{"clone relative path", MethodRepoClone, RepoCloneParams{RepoID: repoExample, Path: "./tiny"}, "path must be absolute"},
		{"clone bad namespace", MethodRepoClone, RepoCloneParams{RepoID: repoExample, Path: pathHello, Namespace: "carol"}, "invalid namespace"},
		{"clone output field", MethodRepoClone, map[string]any{"repo_id": repoExample, "output": pathHello}, `unknown field "output"`},
		{"pull without path", MethodRepoPull, RepoPullParams{RepoID: repoExample}, "path is required"},
		{"pull relative path", MethodRepoPull, RepoPullParams{Path: "hello"}, "path must be absolute"},
		{"pull bad id", MethodRepoPull, RepoPullParams{RepoID: "did:repo:", Path: pathHello}, "invalid repo_id"},
		{"seed without id", MethodRepoSeed, nil, "repo_id is required"},
		{"unseed extra field", MethodRepoUnseed, map[string]any{"repo_id": repoExample, "seed": false}, `unknown field "seed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil, nil)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Code != CodeInvalidParams {
				t.Errorf("code %d, want %d (%v)", e.Code, CodeInvalidParams, e)
			}
			mustContain(t, e.Message, tc.msg)
			mustContain(t, e.Message, tc.method)
		})
	}
	if calls := f.lastRepoCall(); calls != nil {
		t.Errorf("the service was called with invalid params: %+v", calls)
	}
}

// The fake's failures reach the caller with the codes spec/rpc.md gives.
func TestRepoErrorCodes(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		call func() error
		code int64
		msg  string
	}{
		{"show unknown", func() error { _, err := c.RepoShow(ctx, repoUnknown); return err },
			CodeNotFound, "repository " + repoUnknown + " not found"},
		{"sync unknown", func() error { _, err := c.RepoSync(ctx, repoUnknown, nil); return err }, CodeNotFound, "not found"},
		{"seed unknown", func() error { _, err := c.RepoSeed(ctx, repoUnknown, true); return err }, CodeNotFound, "not found"},
		{"add not git", func() error { _, err := c.RepoAdd(ctx, RepoAddParams{Path: pathNotGit}); return err },
			CodeInvalidArgument, "not a git repository"},
		{"clone into non-empty", func() error {
			_, err := c.RepoClone(ctx, RepoCloneParams{RepoID: repoExample, Path: pathTaken}, nil)
			return err
		}, CodeInvalidArgument, "not empty"},
		{"sync unreachable", func() error { _, err := c.RepoSync(ctx, repoNotes, nil); return err },
			CodeUnavailable, "no holder could be reached"},
		{"pull diverged", func() error { _, err := c.RepoPull(ctx, RepoPullParams{Path: pathDiverged}, nil); return err },
			CodeConflict, "not a fast-forward"},
	} {
		err := tc.call()
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Errorf("%s: %v is not an *Error", tc.name, err)
			continue
		}
		if e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: got %d %q, want %d and %q", tc.name, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}

// A repo call sent as a notification (no id) runs, and sends nothing.
func TestRepoCallAsNotification(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	rc := ts.raw(t)
	rc.send(`{"jsonrpc":"2.0","method":"repo.sync","params":{"repo_id":"` + repoExample + `"}}` + "\n")
	testutil.WaitFor(t, "the sync to run", 10*time.Second, func() bool { return f.lastRepoCall() != nil })
	rc.send(`{"jsonrpc":"2.0","id":3,"method":"node.info"}` + "\n")
	if r := decodeResponse(t, rc.line()); string(r.ID) != "3" || r.Method != "" {
		t.Fatalf("got %+v, want only the answer to id 3", r)
	}
}

// Cancelling a long call on the client side ends it on the daemon.
func TestRepoSyncCancelled(t *testing.T) {
	f := newFake()
	started := make(chan struct{})
	ended := make(chan error, 1)
	f.syncHook = func(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return SyncResult{}, fmt.Errorf("syncing: %w", ctx.Err())
	}
	ts := startServer(t, f)
	c := ts.client(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.RepoSync(ctx, repoExample, nil)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RepoSync after cancel: %v", err)
	}
	// jsonrpc2 does not tell the daemon about a cancelled call; closing the
	// connection does (mecli exits, which closes it).
	c.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the service's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's call went on after the client hung up")
	}
}

// repo.locate and repo.publish through the typed client give the fixture's
// answers, and the service gets the ids in canonical form.
func TestRemoteRoundTrip(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx := ctxT(t)

	bare := strings.TrimPrefix(repoExample, "did:repo:")
	loc, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: bare})
	if err != nil {
		t.Fatal(err)
	}
	want := LocateResult{RepoID: repoExample, GitDir: gitDirExample, Namespace: strings.TrimPrefix(didCarol, "did:key:"),
		Node: didCarol, DefaultBranch: "main", Self: didAlice}
	if !reflect.DeepEqual(loc, want) {
		t.Errorf("RepoLocate:\n got %+v\nwant %+v", loc, want)
	}
	if got := f.lastRepoCall(); got != (RepoLocateParams{RepoID: repoExample}) {
		t.Errorf("repo.locate: the service got %+v", got)
	}

	// A fork: bob's namespace, named in the seed's legacy did:key form.
	bob, err := identity.ParseNodeID(didBob)
	if err != nil {
		t.Fatal(err)
	}
	legacy := "did:key:z" + base58.Encode(append([]byte{0xed}, bob[:]...))
	loc, err = c.RepoLocate(ctx, RepoLocateParams{RepoID: repoExample, Namespace: legacy})
	if err != nil {
		t.Fatal(err)
	}
	if loc.Node != didBob || loc.Namespace != strings.TrimPrefix(didBob, "did:key:") {
		t.Errorf("RepoLocate(bob) = %+v", loc)
	}
	if got := f.lastRepoCall(); got != (RepoLocateParams{RepoID: repoExample, Namespace: didBob}) {
		t.Errorf("repo.locate with a legacy namespace: the service got %+v", got)
	}

	// Own: this node's namespace, to push into.
	loc, err = c.RepoLocate(ctx, RepoLocateParams{RepoID: repoExample, Own: true})
	if err != nil {
		t.Fatal(err)
	}
	if loc.Node != didAlice || loc.Self != didAlice || loc.GitDir != gitDirExample {
		t.Errorf("RepoLocate(own) = %+v", loc)
	}

	pub, err := c.RepoPublish(ctx, bare)
	if err != nil {
		t.Fatal(err)
	}
	wantPub := PublishResult{RepoID: repoExample, Updated: true, Seq: seqAlice,
		Refs: []RefInfo{{Name: "refs/heads/fix-typo", OID: headAliceFix}}}
	if !reflect.DeepEqual(pub, wantPub) {
		t.Errorf("RepoPublish:\n got %+v\nwant %+v", pub, wantPub)
	}
	if got := f.lastRepoCall(); got != (RepoIDParams{RepoID: repoExample}) {
		t.Errorf("repo.publish: the service got %+v", got)
	}
}

func TestRemoteInvalidParams(t *testing.T) {
	f := newFake()
	ts := startServer(t, f)
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name   string
		method string
		params any
		msg    string
	}{
		{"locate without id", MethodRepoLocate, map[string]any{}, "repo_id is required"},
		{"locate without params", MethodRepoLocate, nil, "repo_id is required"},
		{"locate bad id", MethodRepoLocate, RepoLocateParams{RepoID: "not-an-id"}, "invalid repo_id"},
		{"locate node id as repo", MethodRepoLocate, RepoLocateParams{RepoID: didBob}, "invalid repo_id"},
		{"locate bad namespace", MethodRepoLocate, RepoLocateParams{RepoID: repoExample, Namespace: "bob"}, "invalid namespace"},
		{"locate bare namespace", MethodRepoLocate, RepoLocateParams{RepoID: repoExample, Namespace: strings.TrimPrefix(didBob, "did:key:")},
			"invalid namespace"},
		{"locate repo as namespace", MethodRepoLocate, RepoLocateParams{RepoID: repoExample, Namespace: repoExample}, "invalid namespace"},
		{"locate own as string", MethodRepoLocate, map[string]any{"repo_id": repoExample, "own": "yes"}, "invalid params"},
		{"locate unknown field", MethodRepoLocate, map[string]any{"repo_id": repoExample, "node": didBob}, `unknown field "node"`},
		{"locate by position", MethodRepoLocate, []string{repoExample}, "params must be a JSON object"},
		{"publish without id", MethodRepoPublish, nil, "repo_id is required"},
		{"publish bad id", MethodRepoPublish, RepoIDParams{RepoID: "did:repo:zzz"}, "invalid repo_id"},
		{"publish extra field", MethodRepoPublish, map[string]any{"repo_id": repoExample, "refs": []string{}}, `unknown field "refs"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil, nil)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Code != CodeInvalidParams {
				t.Errorf("code %d, want %d (%v)", e.Code, CodeInvalidParams, e)
			}
			mustContain(t, e.Message, tc.msg)
			mustContain(t, e.Message, tc.method)
		})
	}
	if calls := f.lastRepoCall(); calls != nil {
		t.Errorf("the service was called with invalid params: %+v", calls)
	}
}

func TestRemoteErrorCodes(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		call func() error
		code int64
		msg  string
	}{
		{"locate unknown", func() error { _, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: repoUnknown}); return err },
			CodeNotFound, "not found"},
		{"locate not replicated", func() error { _, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: repoNotes}); return err },
			CodeNotFound, "holds no replica"},
		{"locate own watched", func() error {
			_, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: repoTiny, Own: true})
			return err
		}, CodeConflict, "commit there instead of pushing"},
		{"locate own, another's namespace", func() error {
			_, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: repoExample, Namespace: didBob, Own: true})
			return err
		}, CodePermission, "you can only push to your own namespace (" + didAlice + ")"},
		{"publish unknown", func() error { _, err := c.RepoPublish(ctx, repoUnknown); return err }, CodeNotFound, "not found"},
		{"publish watched", func() error { _, err := c.RepoPublish(ctx, repoTiny); return err }, CodeConflict, pathTiny},
	} {
		err := tc.call()
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Errorf("%s: %v is not an *Error", tc.name, err)
			continue
		}
		if e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: got %d %q, want %d and %q", tc.name, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}
