package rpc

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/megaengine/megaengine/protocol/identity"
)

func TestRemoteMethodTable(t *testing.T) {
	for name, mutating := range map[string]bool{MethodRepoLocate: false, MethodRepoPublish: true} {
		m, ok := LookupMethod(name)
		if !ok {
			t.Errorf("%s is not in the method table", name)
			continue
		}
		if m.Mutating != mutating {
			t.Errorf("%s: Mutating = %v, want %v", name, m.Mutating, mutating)
		}
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
	if loc != want {
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

// onlyService hides the fake's RemoteService methods: a daemon that does not
// serve them.
type onlyService struct{ Service }

// A Service without the remote helper's methods answers them with
// "method not found", after checking the params as usual.
func TestRemoteNotServed(t *testing.T) {
	ts := startServer(t, onlyService{newFake()})
	c := ts.client(t)
	ctx := ctxT(t)
	_, err := c.RepoLocate(ctx, RepoLocateParams{RepoID: repoExample})
	if !IsCode(err, CodeMethodNotFound) || !strings.Contains(err.Error(), "repo.locate is not served") {
		t.Errorf("RepoLocate on a daemon without it: %v", err)
	}
	_, err = c.RepoPublish(ctx, repoExample)
	if !IsCode(err, CodeMethodNotFound) {
		t.Errorf("RepoPublish on a daemon without it: %v", err)
	}
	_, err = c.RepoPublish(ctx, "nonsense")
	if !IsCode(err, CodeInvalidParams) {
		t.Errorf("RepoPublish with a bad id on a daemon without it: %v", err)
	}
}

var _ RemoteService = (*fakeService)(nil)
