package rpc

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// The fixture: the data the fake service answers with, and that the
// examples in spec/rpc.md show (spec_test.go checks them against it).
const (
	didAlice = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // RFC 8032 test 1
	didBob   = "did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT" // RFC 8032 test 2
	didRelay = "did:key:z6MkwSD8dBdqcXQzKJZQFPy2hh2izzxskndKCjdmC2dBpfME" // RFC 8032 test 3
	didCarol = "did:key:z6Mkh7U7jBwoMro3UeHmXes4tKtFbZhMRWejbtunbU4hhvjP" // RFC 8032 test 1024

	repoExample = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp" // root commit 9fceb02d…, creator carol
	repoTiny    = "did:repo:zW1hkhoxv1iBbVDrDHrL6ZnSQoeh5MXcpRET3N2e2HiGmKk" // root commit 3b18e512…, creator alice (this node)
	repoNotes   = "did:repo:zW1iijbtRCrxRjrbJUePT11PWoNTyk52y3eK1dsz5Z5BZTZ" // root commit d670460b…, creator bob
	repoUnknown = "did:repo:zW1hWQKgmq4TXDuz9Wp7it866C7QgPnLJ9SzezgRg35dbSR" // root commit 0000…, creator carol: nobody has it

	// Paths the fake's repo methods know.
	pathTiny     = "/home/alice/src/tiny"       // repo.add: alice's working repository
	pathNotGit   = "/home/alice/Documents"      // repo.add: not a git repository
	pathHello    = "/home/alice/src/hello"      // repo.clone destination; repo.pull: behind, fast-forwarded
	pathTaken    = "/home/alice/src/taken"      // repo.clone: destination not empty
	pathCurrent  = "/home/alice/src/hello-2"    // repo.pull: already up to date
	pathDiverged = "/home/alice/src/hello-fork" // repo.pull: not a fast-forward

	headTiny     = "8c3f5e1a4b9d2c7e6f0a1b3c5d7e9f2a4b6c8d0e"
	headHelloOld = "1f7a3c9e5b2d8f4a6c0e2b4d6f8a0c2e4b6d8f0a"
	headHello    = "d4e8a2c6f0b4d8e2a6c0f4b8d2e6a0c4f8b2d6e0"
	headHelloTag = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9"
	headBobFeat  = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
	headAliceFix = "b7c1d9e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5"

	// repo.locate's answers: the replica of repoExample on alice's node.
	gitDirExample = "/home/alice/.megaengine/repos/zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp.git"
	seqAlice      = 1795253400000 // alice's signed refs of repoExample after her push

	hostBlock       = "192.0.2.1:1"     // NodeConnect blocks until its context ends
	hostUnreachable = "192.0.2.99:9000" // NodeConnect fails with CodeUnavailable
	hostTimeout     = "192.0.2.98:9000" // NodeConnect fails with context.DeadlineExceeded
	hostBroken      = "192.0.2.97:9000" // NodeConnect fails with a plain error
	hostPanic       = "192.0.2.96:9000" // NodeConnect panics
	hostWrapped     = "192.0.2.95:9000" // NodeConnect fails with a wrapped *Error carrying data
)

func at(hh, mm, ss int) time.Time { return time.Date(2026, 11, 21, hh, mm, ss, 0, time.UTC) }

func fixtureInfo() NodeInfo {
	return NodeInfo{
		DID:             didAlice,
		Alias:           "alice-laptop",
		ListenAddresses: []string{"0.0.0.0:9000"},
		Addresses:       []string{"203.0.113.5:9000"},
		Kind:            KindNormal,
		Network:         "main",
		Reachability:    "reachable",
		Version:         "v0.1.0",
		ProtocolVersion: 1,
		StartedAt:       at(9, 0, 0),
		UptimeSeconds:   3600.5,
		Root:            "/home/alice/.megaengine",
		Socket:          "/home/alice/.megaengine/med.sock",
		Peers:           2,
		KnownNodes:      4,
		Disk:            DiskInfo{FreeBytes: 52613349376, TotalBytes: 250438021120, FloorBytes: 1 << 30},
	}
}

func fixturePeers() []Peer {
	return []Peer{
		{DID: didBob, Alias: "bob", Addresses: []string{"198.51.100.20:9000"}, RemoteAddr: "198.51.100.20:41822",
			Direction: DirectionInbound, Path: "direct", Address: "198.51.100.20:41822", Kind: KindNormal, ConnectedAt: at(9, 15, 2), Score: 3},
		{DID: didRelay, Alias: "relay-eu-1", Addresses: []string{"relay1.example.net:9000"}, RemoteAddr: "192.0.2.10:9000",
			Direction: DirectionOutbound, Path: "direct", Address: "192.0.2.10:9000", Kind: KindRelay, ConnectedAt: at(9, 0, 1), Score: 10},
	}
}

func fixtureNodes() []NodeEntry {
	return []NodeEntry{
		{DID: didAlice, Alias: "alice-laptop", Addresses: []string{"203.0.113.5:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: []string{}, LastSeen: at(10, 0, 0), AnnouncedAt: at(9, 59, 50), Connected: false, Self: true},
		{DID: didBob, Alias: "bob", Addresses: []string{"198.51.100.20:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: []string{}, LastSeen: at(9, 59, 58), AnnouncedAt: at(9, 59, 41), Connected: true},
		{DID: didRelay, Alias: "relay-eu-1", Addresses: []string{"relay1.example.net:9000"}, Kind: KindRelay, Version: "v0.1.0",
			Features: []string{"relay"}, LastSeen: at(9, 59, 59), AnnouncedAt: at(9, 59, 52), Connected: true},
		{DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}, Kind: KindNormal, Version: "v0.1.0",
			Features: nil, LastSeen: at(8, 12, 30), AnnouncedAt: at(8, 12, 29), Connected: false},
	}
}

// fixtureEvents is what the fake publishes when told to; the events.subscribe
// example in the spec filters it to peer.* events.
func fixtureEvents() []Event {
	return []Event{
		{Type: EventNodeDiscovered, Time: at(10, 0, 5), DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}},
		{Type: EventPeerConnected, Time: at(10, 0, 6), DID: didCarol, Alias: "carol", Addresses: []string{"192.0.2.44:9000"}},
		{Type: EventRepoAnnounced, Time: at(10, 0, 7), DID: didCarol, Repo: repoExample},
		{Type: EventPeerDisconnected, Time: at(10, 0, 9), DID: didBob, Alias: "bob", Reason: "idle timeout"},
	}
}

func fixtureRepos() []RepoInfo {
	lastSync := at(9, 59, 50)
	helloSync := at(9, 30, 0)
	return []RepoInfo{
		{RepoID: repoTiny, Name: "tiny", Description: "Tiny", Creator: didAlice, DefaultBranch: "main",
			Delegates: []string{didAlice}, Holders: []string{didAlice, didBob}, Local: true, Path: pathTiny,
			Seeded: true, Replica: ReplicaUpToDate, Head: headTiny, Clones: []CloneStatus{}, LastSync: &lastSync},
		{RepoID: repoExample, Name: "hello", Description: "Hello, world in many languages", Creator: didCarol,
			DefaultBranch: "main", Delegates: []string{didCarol}, Holders: []string{didCarol, didRelay},
			Seeded: true, Replica: ReplicaBehind, Head: headHelloOld,
			Clones:   []CloneStatus{{Path: pathHello, Branch: "main", Status: CloneBehind}},
			LastSync: &helloSync},
		{RepoID: repoNotes, Name: "notes", Description: "Bob's notes", Creator: didBob, DefaultBranch: "main",
			Delegates: []string{didBob}, Holders: []string{didBob}, Replica: ReplicaMissing, Clones: nil},
	}
}

func fixtureRepo(id string) (RepoInfo, bool) {
	for _, r := range fixtureRepos() {
		if r.RepoID == id {
			return r, true
		}
	}
	return RepoInfo{}, false
}

// fixtureDetail is repo.show's answer for repoExample.
func fixtureDetail() RepoDetail {
	info, _ := fixtureRepo(repoExample)
	return RepoDetail{RepoInfo: info, Namespaces: []NamespaceRefs{
		{Node: didCarol, Canonical: true, Seq: 1795252800000, Refs: []RefInfo{
			{Name: "refs/heads/main", OID: headHelloOld},
			{Name: "refs/tags/v1.0", OID: headHelloTag},
		}},
		{Node: didBob, Seq: 1795197852000, Refs: []RefInfo{
			{Name: "refs/heads/feature/german", OID: headBobFeat},
		}},
	}, HolderStates: []HolderStatus{
		{Node: info.Holders[0], InSync: true, Known: true},
		{Node: info.Holders[1], LagSeconds: 3600, Known: true},
	}}
}

func notFound(id string) error {
	return Errorf(CodeNotFound, "repository %s not found", id)
}

// fakeService implements Service from the fixture, with hooks for tests.
type fakeService struct {
	empty bool // answer with nothing: nil slices, zero info

	// syncHook, if set, serves repo.sync instead of the fixture.
	syncHook func(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error)
	// repoCalls records the params every repo method was called with.
	repoCalls []any

	mu      sync.Mutex
	subs    map[int]chan Event
	nextSub int
	types   [][]string // the types each Subscribe was called with

	blocked chan struct{} // receives when a NodeConnect starts blocking
	stops   chan struct{} // receives on every NodeStop
}

func newFake() *fakeService {
	return &fakeService{subs: map[int]chan Event{}, blocked: make(chan struct{}, 16), stops: make(chan struct{}, 16)}
}

func (f *fakeService) NodeInfo(ctx context.Context) (NodeInfo, error) {
	if f.empty {
		return NodeInfo{DID: didAlice}, nil
	}
	return fixtureInfo(), nil
}

func (f *fakeService) NodePeers(ctx context.Context) ([]Peer, error) {
	if f.empty {
		return nil, nil
	}
	return fixturePeers(), nil
}

func (f *fakeService) NodeList(ctx context.Context) ([]NodeEntry, error) {
	if f.empty {
		return nil, nil
	}
	return fixtureNodes(), nil
}

func (f *fakeService) NodeConnect(ctx context.Context, p ConnectParams) (Peer, error) {
	addr, err := identity.ParseAddr(p.Addr)
	if err != nil {
		panic("the server let an invalid address through: " + err.Error())
	}
	switch addr.HostPort {
	case hostBlock:
		f.blocked <- struct{}{}
		<-ctx.Done()
		return Peer{}, ctx.Err()
	case hostUnreachable:
		return Peer{}, Errorf(CodeUnavailable, "connecting to %s: timeout: no recent network activity", addr.HostPort)
	case hostTimeout:
		return Peer{}, fmt.Errorf("handshake with %s: %w", addr.HostPort, context.DeadlineExceeded)
	case hostBroken:
		return Peer{}, errors.New("routing table is corrupt")
	case hostPanic:
		panic("fake panic")
	case hostWrapped:
		e := Errorf(CodeConflict, "already connected to %s", addr.ID)
		e.Data = map[string]any{"did": addr.ID.String()}
		return Peer{}, fmt.Errorf("connecting: %w", e)
	}
	return Peer{DID: addr.ID.String(), Alias: "carol", Addresses: []string{addr.HostPort}, RemoteAddr: addr.HostPort,
		Direction: DirectionOutbound, Path: "direct", Address: addr.HostPort, Kind: KindNormal, ConnectedAt: at(10, 0, 6)}, nil
}

func (f *fakeService) NodeStop(ctx context.Context) error {
	f.stops <- struct{}{}
	return nil
}

func (f *fakeService) record(p any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repoCalls = append(f.repoCalls, p)
}

// lastRepoCall returns the params of the latest repo method call.
func (f *fakeService) lastRepoCall() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.repoCalls) == 0 {
		return nil
	}
	return f.repoCalls[len(f.repoCalls)-1]
}

func (f *fakeService) RepoAdd(ctx context.Context, p RepoAddParams) (RepoInfo, error) {
	f.record(p)
	switch p.Path {
	case pathTiny:
		info, _ := fixtureRepo(repoTiny)
		info.Name = cmp.Or(p.Name, info.Name)
		info.Description = p.Description
		return info, nil
	case pathNotGit:
		return RepoInfo{}, Errorf(CodeInvalidArgument, "%s is not a git repository", p.Path)
	}
	return RepoInfo{}, Errorf(CodeInvalidArgument, "%s has no commits", p.Path)
}

func (f *fakeService) RepoList(ctx context.Context) ([]RepoInfo, error) {
	if f.empty {
		return nil, nil
	}
	return fixtureRepos(), nil
}

func (f *fakeService) RepoShow(ctx context.Context, p RepoIDParams) (RepoDetail, error) {
	f.record(p)
	if p.RepoID == repoExample {
		return fixtureDetail(), nil
	}
	if info, ok := fixtureRepo(p.RepoID); ok {
		return RepoDetail{RepoInfo: info}, nil // nil namespaces: the server sends []
	}
	return RepoDetail{}, notFound(p.RepoID)
}

func (f *fakeService) RepoSync(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error) {
	f.record(p)
	if f.syncHook != nil {
		return f.syncHook(ctx, p, progress)
	}
	switch p.RepoID {
	case repoExample:
		progress(0, 12629, "receiving objects from "+didCarol)
		progress(12629, 12629, "receiving objects from "+didCarol)
		return SyncResult{RepoID: p.RepoID, Updated: true, From: didCarol, Namespaces: 1, Bytes: 12629}, nil
	case repoTiny:
		return SyncResult{RepoID: p.RepoID}, nil
	case repoNotes:
		return SyncResult{}, Errorf(CodeUnavailable, "syncing %s: no holder could be reached (tried 1: %s)", p.RepoID, didBob)
	}
	return SyncResult{}, notFound(p.RepoID)
}

func (f *fakeService) RepoClone(ctx context.Context, p RepoCloneParams, progress ProgressFunc) (CloneResult, error) {
	f.record(p)
	if p.RepoID != repoExample {
		if _, ok := fixtureRepo(p.RepoID); ok {
			return CloneResult{}, Errorf(CodeUnavailable, "cloning %s: no holder could be reached to replicate it", p.RepoID)
		}
		return CloneResult{}, notFound(p.RepoID)
	}
	if p.Path == pathTaken {
		return CloneResult{}, Errorf(CodeInvalidArgument, "cannot clone into %s: the directory exists and is not empty", p.Path)
	}
	progress(0, 2, "copying objects")
	progress(2, 2, "checking out main")
	return CloneResult{RepoID: p.RepoID, Path: p.Path, Branch: "main", Head: headHelloOld}, nil
}

func (f *fakeService) RepoPull(ctx context.Context, p RepoPullParams, progress ProgressFunc) (PullResult, error) {
	f.record(p)
	switch p.Path {
	case pathHello:
		progress(1, 1, "fast-forwarding main")
		return PullResult{RepoID: repoExample, Path: p.Path, Branch: "main", Updated: true, Old: headHelloOld, Head: headHello}, nil
	case pathCurrent:
		return PullResult{RepoID: repoExample, Path: p.Path, Branch: "main", Old: headHello, Head: headHello}, nil
	case pathDiverged:
		return PullResult{}, Errorf(CodeConflict, "pulling into %s: main has diverged from the replica's (not a fast-forward); merge or rebase with git", p.Path)
	}
	return PullResult{}, Errorf(CodeInvalidArgument, "%s is not a working copy made by repo clone", p.Path)
}

func (f *fakeService) RepoSeed(ctx context.Context, p RepoIDParams, seed bool) (RepoInfo, error) {
	f.record(p)
	info, ok := fixtureRepo(p.RepoID)
	if !ok {
		return RepoInfo{}, notFound(p.RepoID)
	}
	info.Seeded = seed
	return info, nil
}

// RepoLocate serves repo.locate: repoExample is replicated (canonical
// namespace carol's), repoTiny is alice's own watched repository, repoNotes
// is known from announcements only.
func (f *fakeService) RepoLocate(ctx context.Context, p RepoLocateParams) (LocateResult, error) {
	f.record(p)
	switch p.RepoID {
	case repoExample:
	case repoTiny:
		if p.Own {
			return LocateResult{}, Errorf(CodeConflict,
				"%s is shared from the working repository %s on this node, which publishes its commits by itself: commit there instead of pushing", p.RepoID, pathTiny)
		}
	case repoNotes:
		return LocateResult{}, Errorf(CodeNotFound, "this node holds no replica of %s", p.RepoID)
	default:
		return LocateResult{}, notFound(p.RepoID)
	}
	owner := didCarol
	if p.RepoID == repoTiny {
		owner = didAlice
	}
	if p.Namespace != "" {
		owner = p.Namespace
	}
	if p.Own {
		if p.Namespace != "" && p.Namespace != didAlice {
			return LocateResult{}, Errorf(CodePermission, "you can only push to your own namespace (%s)", didAlice)
		}
		owner = didAlice
	}
	dir := "/home/alice/.megaengine/repos/" + strings.TrimPrefix(p.RepoID, "did:repo:") + ".git"
	return LocateResult{RepoID: p.RepoID, GitDir: dir, Namespace: strings.TrimPrefix(owner, "did:key:"), Node: owner,
		DefaultBranch: "main", Self: didAlice}, nil
}

// RepoPublish serves repo.publish: alice pushed a branch into her namespace
// of repoExample; repoTiny is published from its working repository.
// RepoSeedRequest serves repo.seed_request: for repoTiny, the relay and
// carol accept, bob takes no requests; every holder ends in sync.
func (f *fakeService) RepoSeedRequest(ctx context.Context, p SeedRequestParams) (SeedRequestResult, error) {
	f.record(p)
	if p.RepoID != repoTiny {
		return SeedRequestResult{}, notFound(p.RepoID)
	}
	return SeedRequestResult{RepoID: p.RepoID, Replicas: p.Replicas, Accepted: 2, InSync: 2,
		Answers: []SeedAnswer{
			{Node: didRelay, Accepted: true, Code: SeedAccepted, Reason: "seeding"},
			{Node: didBob, Code: SeedNotAccepting, Reason: "this node takes no seed requests"},
			{Node: didCarol, Accepted: true, Code: SeedAccepted, Reason: "seeding"},
		},
		Holders: []HolderStatus{
			{Node: didAlice, InSync: true, Known: true},
			{Node: didCarol, InSync: true, Known: true},
			{Node: didRelay, InSync: true, Known: true},
		}}, nil
}

func (f *fakeService) RepoRemove(ctx context.Context, p RepoRemoveParams) (RemoveResult, error) {
	f.record(p)
	if p.RepoID == repoUnknown {
		return RemoveResult{}, notFound(p.RepoID)
	}
	return RemoveResult{RepoID: p.RepoID, KeptReplica: p.KeepReplica}, nil
}

// RepoEdit serves repo.edit and repo.delegate.*: carol's repoExample, at
// version 1 with carol alone, gets version 2 signed by this node.
func (f *fakeService) RepoEdit(ctx context.Context, p RepoEditParams) (EditResult, error) {
	f.record(p)
	if p.RepoID == repoUnknown {
		return EditResult{}, notFound(p.RepoID)
	}
	id := RepoIdent{Version: 2, Name: "example", Description: "An example repository", Delegates: []string{didCarol, didAlice}, Threshold: 1, Signers: []string{didAlice}}
	if p.Name != nil {
		id.Name = *p.Name
	}
	if p.Description != nil {
		id.Description = *p.Description
	}
	if p.AddDelegate != "" {
		id.Delegates = append(id.Delegates, p.AddDelegate)
	}
	if p.RemoveDelegate != "" {
		id.Delegates = slices.DeleteFunc(id.Delegates, func(d string) bool { return d == p.RemoveDelegate })
	}
	if p.Threshold > 0 {
		id.Threshold = p.Threshold
		return EditResult{RepoID: p.RepoID, Missing: 1, Identity: id}, nil // the other delegate signs too
	}
	return EditResult{RepoID: p.RepoID, Applied: true, Identity: id}, nil
}

func (f *fakeService) RepoPublish(ctx context.Context, p RepoIDParams) (PublishResult, error) {
	f.record(p)
	if f.empty {
		return PublishResult{RepoID: p.RepoID}, nil // nil refs: the server sends []
	}
	switch p.RepoID {
	case repoExample:
		return PublishResult{RepoID: p.RepoID, Updated: true, Seq: seqAlice,
			Refs: []RefInfo{{Name: "refs/heads/fix-typo", OID: headAliceFix}}}, nil
	case repoTiny:
		return PublishResult{}, Errorf(CodeConflict,
			"%s is shared from the working repository %s on this node, which publishes its commits by itself: commit there instead of pushing", p.RepoID, pathTiny)
	case repoNotes:
		return PublishResult{}, Errorf(CodeNotFound, "this node holds no replica of %s", p.RepoID)
	}
	return PublishResult{}, notFound(p.RepoID)
}

// Subscribe ignores types on purpose: the server must filter anyway.
func (f *fakeService) Subscribe(types []string) (<-chan Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	ch := make(chan Event, 1024)
	f.subs[id] = ch
	f.types = append(f.types, slices.Clone(types))
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if c, ok := f.subs[id]; ok {
			close(c)
			delete(f.subs, id)
		}
	}
}

func (f *fakeService) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeService) publish(evs ...Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		for _, ch := range f.subs {
			ch <- ev
		}
	}
}

// tryPublish sends ev to every subscriber whose channel has room.
func (f *fakeService) tryPublish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// endStreams closes every subscriber's channel, as the daemon does at
// shutdown or to drop a slow subscriber.
func (f *fakeService) endStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, ch := range f.subs {
		close(ch)
		delete(f.subs, id)
	}
}

// shortDir returns a new temporary directory with a path short enough for a
// unix socket (t.TempDir's can exceed 108 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testServer is a Server running on a socket in a short temp dir.
type testServer struct {
	root   string
	path   string
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

// startServer serves svc on a new socket; configure runs before Serve.
func startServer(t *testing.T, svc Service, configure ...func(*Server)) *testServer {
	t.Helper()
	root := shortDir(t)
	path := SocketPath(root)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{root: root, path: path, srv: NewServer(svc, nil), cancel: cancel, done: make(chan error, 1)}
	for _, f := range configure {
		f(ts.srv)
	}
	go func() { ts.done <- ts.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels Serve and waits for it to return; it returns Serve's error.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of cancellation")
		return nil
	}
}

func (ts *testServer) client(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain socket connection for writing bytes by hand.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func (ts *testServer) raw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one newline-terminated message.
func (c *rawConn) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading an answer: %v (got %q)", err, s)
	}
	return s
}

// response is a decoded answer or notification.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeResponse(t *testing.T, s string) response {
	t.Helper()
	var r response
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("answer %q is not JSON: %v", s, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("answer %q lacks jsonrpc 2.0", s)
	}
	return r
}

// errCode returns the code of an error answer, failing if it is not one.
func (r response) errCode(t *testing.T) int64 {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("want an error answer, got result %s", r.Result)
	}
	return r.Error.Code
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectClosed reads until the server's end closes.
func expectClosed(t *testing.T, rc *rawConn) {
	t.Helper()
	_, err := io.Copy(io.Discard, rc.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("want the connection closed, got %v", err)
	}
}

// RepoVerify serves repo.verify: repoExample's replica is sound but
// someone moved carol's main on disk (reset); repoTiny is sound.
func (f *fakeService) RepoVerify(ctx context.Context, p RepoVerifyParams) (VerifyResult, error) {
	f.record(p)
	example := RepoVerify{RepoID: repoExample, Name: "example", OK: false, Namespaces: []NamespaceVerify{
		{Node: didAlice, Seq: seqAlice, OK: true},
		{Node: didCarol, Seq: 1795250000000, OK: false, Problem: "the refs of …hhvjP in this node's replica of " + repoExample +
			" differed from its signed refs (moved refs/heads/main), so they were not served; it was reset to the signed refs"},
	}}
	tiny := RepoVerify{RepoID: repoTiny, Name: "tiny", OK: true, Namespaces: []NamespaceVerify{{Node: didAlice, Seq: 1795240000000, OK: true}}}
	switch p.RepoID {
	case "":
		return VerifyResult{OK: false, Checked: 2, Failed: 1, Repos: []RepoVerify{example, tiny}}, nil
	case repoTiny:
		return VerifyResult{OK: true, Checked: 1, Repos: []RepoVerify{tiny}}, nil
	case repoNotes:
		return VerifyResult{}, Errorf(CodeNotFound, "this node holds no replica of %s", p.RepoID)
	}
	return VerifyResult{}, notFound(p.RepoID)
}
