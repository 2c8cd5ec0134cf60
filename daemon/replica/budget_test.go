package replica

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// stranger is a hostile holder: it announces a repository with a valid
// document and signed refs, then answers every fetch with an endless pack
// of valid blobs. Other nodes' fetches go to next.
type stranger struct {
	key     *identity.Key
	repo    identity.RepoID
	doc     *wire.RepoDoc
	docRaw  []byte
	refs    *wire.SignedRefs
	refsRaw []byte
	next    Network
	sent    atomic.Int64 // pack bytes written
	fetches atomic.Int64
}

func newStranger(t *testing.T) *stranger {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := bytes.Repeat([]byte{0x5a}, 20)
	repo, err := identity.NewRepoID(root, key.ID())
	if err != nil {
		t.Fatal(err)
	}
	s := &stranger{key: key, repo: repo}
	s.doc, err = wire.SignRepoDoc(key, wire.RepoDocFields{Root: root, Name: "bait", DefaultBranch: "main", Created: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.docRaw, _ = s.doc.Marshal()
	s.refs, err = wire.SignRefs(key, repo, uint64(time.Now().UnixMilli()), []wire.Ref{{Name: "refs/heads/main", OID: root}})
	if err != nil {
		t.Fatal(err)
	}
	s.refsRaw, _ = s.refs.Marshal()
	return s
}

// announceTo stores the stranger's announcement in st, as gossip would.
func (s *stranger) announceTo(t *testing.T, st *store.Store) {
	t.Helper()
	ra := &wire.RepoAnnouncement{Repo: s.repo, Doc: s.doc.Digest(), RefsSeq: s.refs.Seq(), RefsDigest: s.refs.Digest()}
	env, err := wire.Sign(s.key, time.Now(), ra)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Marshal()
	a := store.Announcement{Type: uint8(env.Type), Origin: env.Origin, Subject: []byte(s.repo.String()), Timestamp: env.Timestamp, Raw: raw}
	if _, err := st.Put(a); err != nil {
		t.Fatal(err)
	}
}

func (s *stranger) Connected(identity.NodeID) bool { return true }

func (s *stranger) OpenFetch(ctx context.Context, id identity.NodeID) (Stream, error) {
	if id != s.key.ID() {
		return s.next.OpenFetch(ctx, id)
	}
	s.fetches.Add(1)
	client, server := net.Pipe()
	go s.serve(server)
	return client, nil
}

func (s *stranger) OpenSeed(context.Context, identity.NodeID) (Stream, error) {
	return nil, errors.New("no seed requests to strangers")
}

// serve sends the header, then pack frames until the client hangs up.
func (s *stranger) serve(c net.Conn) {
	defer c.Close()
	if _, _, err := wire.ReadFetchFrame(c, wire.FrameRequest); err != nil {
		return
	}
	h := wire.FetchHeader{Status: wire.FetchOK, Doc: s.docRaw, Refs: [][]byte{s.refsRaw}}
	if wire.WriteFetchMessage(c, wire.FrameHeader, h) != nil {
		return
	}
	fw := &frameWriter{w: c, h: nopHash{}}
	bw := bufio.NewWriterSize(fw, wire.MaxPackChunk)
	defer func() { s.sent.Store(fw.n) }()
	hdr := []byte("PACK\x00\x00\x00\x02\x01\x00\x00\x00") // version 2, 2^24 objects
	if _, err := bw.Write(hdr); err != nil {
		return
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	blob := make([]byte, 32<<10)
	for {
		for i := range blob {
			blob[i] = byte(rnd.Uint32())
		}
		if _, err := bw.Write(packObject(3, blob)); err != nil {
			return
		}
		s.sent.Store(fw.n)
	}
}

// packObject encodes one undeltified object of a pack.
func packObject(typ byte, content []byte) []byte {
	var out bytes.Buffer
	size := uint64(len(content))
	b := typ<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		out.WriteByte(b | 0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	out.WriteByte(b)
	zw := zlib.NewWriter(&out)
	zw.Write(content)
	zw.Close()
	return out.Bytes()
}

type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 1 }

// An endless stream of valid pack objects from a stranger stops at the
// budget of an automatically replicated repository: nothing is left, the
// repository shows the error, the holder is backed off, the node works.
func TestEndlessPackStopsAtBudget(t *testing.T) {
	const budget = 1 << 20
	bad := newStranger(t)
	owner := newNode(t, &pipeNet{t: t}, nil)
	goodRepo, _, err := owner.Share(t.Context(), workRepo(t, 0), "good", "")
	if err != nil {
		t.Fatal(err)
	}
	bad.next = &pipeNet{t: t, server: owner.Service}
	c := newNode(t, bad, func(c *Config) { c.ReplicateMax = budget })
	bad.announceTo(t, c.store)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Sync(ctx, bad.repo, identity.NodeID{}, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless pack: err %v, want ErrTooLarge", err)
	}
	t.Logf("the stranger wrote %d bytes before the cut (budget %d), in %v", bad.sent.Load(), budget, time.Since(start))
	if _, err := os.Stat(c.Dir(bad.repo)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replica directory of a cut first fetch exists (%v)", err)
	}
	untouched(t, c, bad.repo)
	info, err := c.Info(ctx, bad.repo)
	if err != nil || !strings.Contains(info.LastError, "over budget") || !strings.Contains(info.LastError, "replicate-max") {
		t.Fatalf("last error %q (%v), want the budget named", info.LastError, err)
	}
	// The holder is backed off: another sync does not fetch from it again,
	// and still says why.
	if _, err := c.Sync(ctx, bad.repo, identity.NodeID{}, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("second sync: err %v, want the budget error again", err)
	}
	if n := bad.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches from the stranger, want 1 (backed off)", n)
	}
	// The node is healthy: a good repository still replicates.
	if _, err := c.FetchFrom(ctx, owner.key.ID(), goodRepo, nil); err != nil {
		t.Fatalf("fetch of a good repository after the attack: %v", err)
	}
}

// Each fetch's budget is the repository's less what its replica holds, and
// all of one creator's automatically replicated repositories share the
// origin budget; a repository the owner chose gets MaxPackSize.
func TestBudgetsPerRepositoryAndOrigin(t *testing.T) {
	const size = 600 << 10
	owner := newNode(t, &pipeNet{t: t}, nil)
	a, _, err := owner.Share(t.Context(), workRepo(t, size), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := owner.Share(t.Context(), randomRepo(t, size, 2), "b", "")
	if err != nil {
		t.Fatal(err)
	}
	c := newNode(t, &pipeNet{t: t, server: owner.Service}, func(c *Config) {
		c.ReplicateMax, c.OriginMax = 1<<20, 1<<20
	})
	if _, err := fetch(t, c, owner, a); err != nil {
		t.Fatalf("a fits both budgets: %v", err)
	}
	_, err = fetch(t, c, owner, b)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "repositories of") {
		t.Fatalf("b crosses the origin budget: err %v", err)
	}
	untouched(t, c, b)
	if err := c.Seed(b, true); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, c, owner, b); err != nil {
		t.Fatalf("b chosen with repo seed: %v", err)
	}
}

// randomRepo is a working repository of one commit holding size random
// bytes drawn from seed: a root commit of its own.
func randomRepo(t testing.TB, size int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	buf := make([]byte, size)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := range buf {
		buf[i] = byte(rnd.Uint32())
	}
	os.WriteFile(dir+"/data.bin", buf, 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "data")
	return dir
}

// Fetches of two repositories of one creator running at once share what
// the creator's budget has left: the bytes one is receiving count against
// the other, and count no more once it ends.
func TestOriginBudgetCountsFetchesInFlight(t *testing.T) {
	owner := newNode(t, &pipeNet{t: t}, nil)
	a, _, err := owner.Share(t.Context(), randomRepo(t, 10, 3), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := owner.Share(t.Context(), randomRepo(t, 10, 4), "b", "")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := owner.Doc(a)
	c := newNode(t, &pipeNet{t: t}, func(c *Config) { c.ReplicateMax, c.OriginMax = 1<<20, 1<<20 })
	ba, bb := c.fetchBudget(a, doc), c.fetchBudget(b, doc)
	if err := ba.take(700 << 10); err != nil {
		t.Fatalf("the first fetch within the budget: %v", err)
	}
	if err := bb.take(700 << 10); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "at once") {
		t.Fatalf("the second fetch at the same time: %v", err)
	}
	bb.release()
	ba.release()
	again := c.fetchBudget(b, doc)
	if err := again.take(700 << 10); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	again.release()
}
