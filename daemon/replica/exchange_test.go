package replica

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// The fetch exchange between two replica services over net.Pipe: no QUIC,
// no gossip, real git and real Badger.

func git(tb testing.TB, dir string, args ...string) string { return testutil.Git(tb, dir, args...) }

// workRepo makes a working repository with a few commits and, if big > 0,
// a file of big incompressible bytes (so its pack spans many frames).
func workRepo(t testing.TB, big int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	os.MkdirAll(dir, 0o755)
	git(t, dir, "init", "-q", "-b", "main")
	for i, name := range []string{"README.md", "a.txt"} {
		os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("line\n", i+1)), 0o644)
		git(t, dir, "add", name)
		git(t, dir, "commit", "-q", "-m", "add "+name)
	}
	if big > 0 {
		buf := make([]byte, big)
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range buf {
			buf[i] = byte(rnd.Uint32())
		}
		os.WriteFile(filepath.Join(dir, "blob.bin"), buf, 0o644)
		git(t, dir, "add", ".")
		git(t, dir, "commit", "-q", "-m", "big")
	}
	git(t, dir, "tag", "-a", "v1", "-m", "v1")
	return dir
}

// pipeNet connects a client service to a serving one through net.Pipe;
// tamper, if set, rewrites the server's frames on their way.
type pipeNet struct {
	t      testing.TB
	server *Service
	tamper func(i int, typ byte, payload []byte) (byte, []byte, bool)
}

func (p *pipeNet) Connected(identity.NodeID) bool { return true }

func (p *pipeNet) OpenFetch(ctx context.Context, _ identity.NodeID) (Stream, error) {
	client, server := net.Pipe()
	if p.tamper == nil {
		go p.server.ServeFetch(ctx, identity.NodeID{}, server)
		return client, nil
	}
	upstream, real := net.Pipe()
	go p.server.ServeFetch(ctx, identity.NodeID{}, real)
	go p.relay(server, upstream)
	return client, nil
}

func (p *pipeNet) OpenSeed(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("no seed requests over pipes")
}

// relay forwards the request, then the server's frames through tamper
// until it drops one with ok false (the connection is then cut).
func (p *pipeNet) relay(down, up net.Conn) {
	defer down.Close()
	defer up.Close()
	_, req, err := wire.ReadFetchFrame(down, wire.FrameRequest)
	if err != nil || wire.WriteFetchFrame(up, wire.FrameRequest, req) != nil {
		return
	}
	for i := 0; ; i++ {
		typ, payload, err := wire.ReadFetchFrame(up, wire.FrameHeader, wire.FramePack, wire.FrameEnd, wire.FrameError)
		if err != nil {
			return
		}
		typ, payload, ok := p.tamper(i, typ, payload)
		if !ok || wire.WriteFetchFrame(down, typ, payload) != nil {
			return
		}
	}
}

type node struct {
	*Service
	key   *identity.Key
	store *store.Store
	root  string
}

func newNode(t testing.TB, net Network, tweak func(*Config)) *node {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	st, err := store.Open(filepath.Join(root, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Key: key, Store: st, Git: &gitstore.Runner{}, Net: net, Root: root,
		Announce: func(*wire.RepoAnnouncement) error { return nil }}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &node{Service: s, key: key, store: st, root: root}
}

// pair makes an owner sharing a working repository and a client that
// fetches from it through pn.
func pair(t *testing.T, big int, tweak func(*Config)) (owner, client *node, repo identity.RepoID, pn *pipeNet) {
	t.Helper()
	owner = newNode(t, &pipeNet{t: t}, nil)
	repo, _, err := owner.Share(context.Background(), workRepo(t, big), "work", "a test")
	if err != nil {
		t.Fatal(err)
	}
	pn = &pipeNet{t: t, server: owner.Service}
	client = newNode(t, pn, tweak)
	return owner, client, repo, pn
}

// untouched fails unless the client holds nothing of repo: no document, no
// signed refs, no refs, and no temporary files of a transfer.
func untouched(t *testing.T, c *node, repo identity.RepoID) {
	t.Helper()
	if _, ok, _ := c.store.RepoDoc(repo); ok {
		t.Error("the document was stored")
	}
	n := 0
	c.store.EachSignedRefs(repo, func(identity.NodeID, uint64, []byte) error { n++; return nil })
	if n > 0 {
		t.Errorf("%d signed refs were stored", n)
	}
	if bare, err := c.git.OpenBare(c.Dir(repo)); err == nil {
		if nss, _ := bare.Namespaces(context.Background()); len(nss) > 0 {
			t.Errorf("the replica has namespaces %v", nss)
		}
	}
	for _, pat := range []string{"objects/incoming-*", "objects/pack/tmp_*", "objects/pack/*.pack"} {
		if m, _ := filepath.Glob(filepath.Join(c.Dir(repo), pat)); len(m) > 0 {
			t.Errorf("left behind: %v", m)
		}
	}
}

func fetch(t *testing.T, c *node, owner *node, repo identity.RepoID) (FetchResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.FetchFrom(ctx, owner.key.ID(), repo, nil)
}

func TestFetchOverPipe(t *testing.T) {
	owner, client, repo, _ := pair(t, 0, nil)
	res, err := fetch(t, client, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	if res.Namespaces != 1 || res.Bytes == 0 {
		t.Fatalf("fetch result %+v, want one namespace and some bytes", res)
	}
	ns := Namespace(owner.key.ID())
	want, _ := mustBare(t, owner, repo).Refs(context.Background(), ns)
	got, _ := mustBare(t, client, repo).Refs(context.Background(), ns)
	if len(want) == 0 || !equalRefs(got, want) {
		t.Fatalf("client refs %v, owner refs %v", got, want)
	}
	git(t, client.Dir(repo), "fsck", "--strict")
	// Again: already up to date, nothing moves.
	if res, err := fetch(t, client, owner, repo); err != nil || res.Namespaces != 0 || res.Bytes != 0 {
		t.Fatalf("second fetch: %+v, %v", res, err)
	}
}

func TestFetchRefusesTamperedHeader(t *testing.T) {
	owner, client, repo, pn := pair(t, 0, nil)
	pn.tamper = func(i int, typ byte, payload []byte) (byte, []byte, bool) {
		if typ != wire.FrameHeader {
			return typ, payload, true
		}
		h, err := wire.DecodeFetchHeader(payload)
		if err != nil {
			t.Error(err)
			return typ, payload, false
		}
		h.Refs[0][len(h.Refs[0])-3] ^= 0x01 // inside the signature
		out, err := cborx.Marshal(h)
		if err != nil {
			t.Error(err)
		}
		return typ, out, true
	}
	_, err := fetch(t, client, owner, repo)
	if err == nil || !strings.Contains(err.Error(), "do not verify") {
		t.Fatalf("tampered signed refs: err %v", err)
	}
	untouched(t, client, repo)
}

func TestFetchRefusesTruncatedPack(t *testing.T) {
	owner, client, repo, pn := pair(t, 300<<10, nil)
	pn.tamper = func(i int, typ byte, payload []byte) (byte, []byte, bool) {
		return typ, payload, typ != wire.FramePack || i < 3 // cut after two pack frames
	}
	if _, err := fetch(t, client, owner, repo); err == nil {
		t.Fatal("a truncated pack was accepted")
	}
	untouched(t, client, repo)
}

func TestFetchCutsPackOverBudget(t *testing.T) {
	const budget = 100 << 10
	owner, client, repo, _ := pair(t, 300<<10, func(c *Config) { c.MaxPackSize = budget })
	res, err := fetch(t, client, owner, repo)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("pack over the budget: err %v, want ErrTooLarge", err)
	}
	if res.Bytes > budget {
		t.Fatalf("received %d bytes, more than the budget of %d", res.Bytes, budget)
	}
	untouched(t, client, repo)
}

func mustBare(t *testing.T, n *node, repo identity.RepoID) *gitstore.Bare {
	t.Helper()
	b, err := n.git.OpenBare(n.Dir(repo))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalRefs(a, b []gitstore.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Below the free-space floor no object from the network is taken: a fetch
// that starts then is refused, one under way is cut, and nothing is left.
func TestFetchRefusedWhileDiskLow(t *testing.T) {
	low := errors.New("disk space low")
	var frames int
	owner, client, repo, _ := pair(t, 300<<10, func(c *Config) {
		c.DiskLow = func() error {
			frames++
			if frames > 3 { // the space runs out during the transfer
				return low
			}
			return nil
		}
	})
	if _, err := fetch(t, client, owner, repo); !errors.Is(err, low) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("fetch while the disk runs low: %v", err)
	}
	untouched(t, client, repo)
	if _, err := fetch(t, client, owner, repo); !errors.Is(err, low) {
		t.Fatalf("fetch with the disk low: %v", err)
	}
	untouched(t, client, repo)
}
