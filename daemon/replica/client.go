package replica

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// ProgressFunc is told how a long transfer goes: bytes done, total bytes
// (0 if unknown), and what is happening.
type ProgressFunc func(done, total int64, message string)

// FetchResult is what one fetch changed.
type FetchResult struct {
	Namespaces int   // namespaces updated
	Bytes      int64 // pack bytes received
}

// errNotHeld means the holder does not have the repository.
var errNotHeld = errors.New("holder does not have the repository")

// offer is what a holder's header offers once verified.
type offer struct {
	doc      *wire.RepoDoc  // the newest version
	chain    *wire.DocChain // every version the holder sent
	proposal []byte         // a next version short of signatures, if sent
	updates  []update
	tips     []string // object ids the updates name
}

// held is what the replica held when the fetch began: every namespace's
// refs (the haves are their tips), and the fingerprint of all namespaces'
// refs taken before they were listed. While the fingerprint stays the
// same, commit takes a namespace's current refs from here instead of
// listing them again.
type held struct {
	refs        []gitstore.NamespacedRef
	fingerprint [32]byte
}

// nsRefs are namespace ns's refs in h, sorted by name as Bare.Refs.
func (h held) nsRefs(ns string) []gitstore.Ref {
	out := []gitstore.Ref{}
	for _, r := range h.refs {
		if r.Namespace == ns {
			out = append(out, gitstore.Ref{Name: r.Name, OID: r.OID})
		}
	}
	slices.SortFunc(out, func(a, b gitstore.Ref) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// update is one namespace's newer signed refs.
type update struct {
	node identity.NodeID
	sr   *wire.SignedRefs
	raw  []byte
}

// fetch runs the fetch exchange for repo on st: every namespace the holder
// has newer signed refs of. The replica changes only if everything
// verified: the document, each signed refs' signature, the pack's digest,
// every object (index-pack checks them), and the connectivity of every new
// tip. st is closed on return.
func (s *Service) fetch(ctx context.Context, st Stream, repo identity.RepoID, progress ProgressFunc) (res FetchResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	if err := s.cfg.DiskLow(); err != nil {
		return res, errorf(ErrTooLarge, "not fetching %s: %w", repo, err)
	}
	defer s.readLock(repo)() // no repack while a pack comes in

	bare, known, had, err := s.request(ctx, st, repo)
	if err != nil {
		return res, err
	}
	var f *flight
	if bare == nil && len(known) == 0 { // a first fetch: others may follow it
		f = s.beginFlight(repo)
		defer s.endFlight(repo, f)
	}
	haves := len(had.refs)
	of, err := s.readOffer(st, repo, known, f)
	if err != nil {
		return res, err
	}
	b := s.fetchBudget(repo, of.doc)
	defer b.release()
	created := bare == nil
	if created {
		if bare, err = s.initBare(ctx, repo); err != nil {
			return res, err
		}
	}
	// Without haves the holder sends everything: index-pack then also
	// checks that the pack needs nothing from here.
	if res.Bytes, err = s.receivePack(ctx, st, bare, &b, haves == 0, progress, f); err != nil {
		if created {
			s.dropUnheld(repo)
		}
		return res, err
	}
	if len(of.updates) == 0 {
		if created {
			return res, nil
		}
		s.publish.Lock() // no refs are newer; the identity may be
		defer s.publish.Unlock()
		return res, s.adoptChain(repo, of.chain, of.proposal)
	}
	res.Namespaces, err = s.commit(ctx, bare, repo, of, had)
	if res.Bytes > 0 {
		s.repackSoon(repo)
	}
	return res, err
}

// request sends what the replica has: the signed refs seqs and every tip.
// It returns the replica (nil if none yet), the seqs it holds and its refs.
func (s *Service) request(ctx context.Context, st Stream, repo identity.RepoID) (*gitstore.Bare, map[identity.NodeID]uint64, held, error) {
	req := wire.FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{}, Known: []wire.KnownRefs{}, Haves: [][]byte{}}
	known := map[identity.NodeID]uint64{}
	_ = s.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, _ []byte) error {
		known[node] = seq
		req.Known = append(req.Known, wire.KnownRefs{Node: node.PublicKey(), Seq: seq})
		return nil
	})
	var bare *gitstore.Bare
	var had held
	if _, ok, _ := s.store.RepoDoc(repo); ok {
		bare, _ = s.openBare(repo)
	}
	if bare != nil {
		had.fingerprint = refsFingerprint(bare.Dir, "")
		refs, err := bare.RefsUnder(ctx, "refs/")
		if err != nil {
			return nil, nil, held{}, err
		}
		had.refs = refs
		tips := make([]string, len(refs))
		for i, r := range refs {
			tips[i] = r.OID
		}
		tips = dedupe(tips)
		for _, h := range tips[:min(len(tips), wire.MaxHaves)] {
			b, _ := hex.DecodeString(h)
			req.Haves = append(req.Haves, b)
		}
	}
	st.SetWriteDeadline(time.Now().Add(fetchIdle))
	if err := wire.WriteFetchMessage(st, wire.FrameRequest, req); err != nil {
		return nil, nil, held{}, err
	}
	st.SetWriteDeadline(time.Time{})
	return bare, known, had, nil
}

// readOffer reads the header and verifies it: the document is repo's (and
// the one we hold, if any), every signed refs verifies and names repo.
// Signed refs not newer than ours are left out. Followers of f get the
// header once it verified.
func (s *Service) readOffer(st Stream, repo identity.RepoID, known map[identity.NodeID]uint64, f *flight) (*offer, error) {
	st.SetReadDeadline(time.Now().Add(fetchIdle))
	_, payload, err := wire.ReadFetchFrame(st, wire.FrameHeader)
	if err != nil {
		return nil, fmt.Errorf("reading the fetch header: %w", err)
	}
	h, err := wire.DecodeFetchHeader(payload)
	if err != nil {
		return nil, err
	}
	switch h.Status {
	case wire.FetchOK:
	case wire.FetchNotFound:
		return nil, errNotHeld
	default:
		return nil, fmt.Errorf("holder answered status %d: %q", h.Status, h.Message)
	}
	chain, err := wire.OpenDocChain(h.Doc, h.Versions)
	if err != nil {
		return nil, fmt.Errorf("holder sent an invalid repository document: %w", err)
	}
	if chain.First().Repo() != repo {
		return nil, fmt.Errorf("holder sent the document of %s, not %s", chain.First().Repo(), repo)
	}
	if have, err := s.Chain(repo); err == nil && have.First().Digest() != chain.First().Digest() {
		return nil, fmt.Errorf("holder sent a different document for %s", repo)
	}
	of := &offer{doc: chain.Latest(), chain: chain, proposal: h.Proposal}
	for _, raw := range h.Refs {
		sr, err := wire.OpenSignedRefs(raw)
		if err != nil {
			return nil, fmt.Errorf("holder sent signed refs that do not verify: %w", err)
		}
		if sr.Repo() != repo {
			return nil, errors.New("holder sent signed refs of another repository")
		}
		if sr.Seq() <= known[sr.Node()] {
			continue // not newer than ours: ignore (a holder may be behind)
		}
		of.updates = append(of.updates, update{sr.Node(), sr, raw})
		for _, r := range sr.Refs() {
			of.tips = append(of.tips, hex.EncodeToString(r.OID))
		}
	}
	f.pass(wire.FrameHeader, payload)
	return of, nil
}

// receivePack pipes the pack frames into index-pack as they arrive, within
// the pack budget, and checks the end frame's size and digest. Whatever
// goes wrong, index-pack is stopped and its temporary files go with it.
func (s *Service) receivePack(ctx context.Context, st Stream, bare *gitstore.Bare, b *budget, selfContained bool, progress ProgressFunc, f *flight) (int64, error) {
	feed := newPackFeed()
	var indexed chan error // nil until the first pack frame starts index-pack
	finish := func(err error) error {
		feed.close(err) // nil: a clean end of input
		if indexed != nil {
			if ierr := <-indexed; err == nil && ierr != nil {
				err = fmt.Errorf("indexing the pack: %w", ierr)
			}
		}
		return err
	}
	var received int64
	digest := sha256.New()
	for {
		st.SetReadDeadline(time.Now().Add(fetchIdle))
		typ, payload, err := wire.ReadFetchFrame(st, wire.FramePack, wire.FrameEnd, wire.FrameError)
		if err != nil {
			return received, finish(fmt.Errorf("receiving the pack: %w", err))
		}
		switch typ {
		case wire.FramePack:
			if err := b.take(int64(len(payload))); err != nil {
				return received, finish(err)
			}
			if err := s.cfg.DiskLow(); err != nil {
				return received, finish(errorf(ErrTooLarge, "cut the transfer: %w", err))
			}
			if indexed == nil {
				indexed = make(chan error, 1)
				go func() {
					err := bare.IndexPack(ctx, feed, gitstore.IndexOptions{MaxInputSize: b.limit, SelfContained: selfContained})
					close(feed.stopped) // unblocks the writer if index-pack stopped reading early
					indexed <- err
				}()
			}
			f.pass(typ, payload)
			digest.Write(payload)
			received += int64(len(payload))
			if err := feed.write(payload); err != nil {
				return received, finish(fmt.Errorf("indexing the pack: %w", err))
			}
			if progress != nil {
				progress(received, 0, "receiving objects")
			}
		case wire.FrameEnd:
			end, err := wire.DecodeFetchEnd(payload)
			if err != nil {
				return received, finish(err)
			}
			if end.Size != uint64(received) || !bytes.Equal(end.Digest, digest.Sum(nil)) {
				return received, finish(fmt.Errorf("the pack does not match its digest (%d bytes received, %d announced)", received, end.Size))
			}
			f.pass(typ, payload) // followers index the pack themselves: no need to wait for ours
			return received, finish(nil)
		case wire.FrameError:
			if e, _ := wire.DecodeFetchError(payload); e != nil {
				return received, finish(fmt.Errorf("holder aborted the fetch: %q", e.Message))
			}
			return received, finish(errors.New("holder aborted the fetch"))
		}
	}
}

// feedQueue is how many pack frames (64 KiB each at most) reading the
// stream may run ahead of index-pack: the stream is read (and frames are
// passed on to followers) while index-pack works.
const feedQueue = 16

// packFeed carries pack frames to index-pack through a bounded queue.
type packFeed struct {
	frames  chan []byte
	stopped chan struct{} // closed once index-pack stopped reading
	cur     []byte
	err     error // why the input ended early; set before frames is closed
}

func newPackFeed() *packFeed {
	return &packFeed{frames: make(chan []byte, feedQueue), stopped: make(chan struct{})}
}

// write queues b, waiting while the queue is full.
func (p *packFeed) write(b []byte) error {
	select {
	case p.frames <- b:
		return nil
	case <-p.stopped:
		return errors.New("index-pack stopped reading")
	}
}

// close ends the input: cleanly if err is nil, else with err.
func (p *packFeed) close(err error) {
	p.err = err
	close(p.frames)
}

// Read is index-pack's input.
func (p *packFeed) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		next, ok := <-p.frames
		if !ok {
			return 0, cmp.Or(p.err, io.EOF)
		}
		p.cur = next
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// dropUnheld removes the replica directory a failed first fetch of repo
// made, unless a document was stored meanwhile: a cut transfer of a
// repository the node did not hold leaves nothing.
func (s *Service) dropUnheld(repo identity.RepoID) {
	if _, ok, _ := s.store.RepoDoc(repo); ok {
		return
	}
	s.forgetBare(repo)
	if err := os.RemoveAll(s.Dir(repo)); err != nil {
		s.log.Warn("removing the replica a failed first fetch left failed", "repo", repo, "err", err)
	}
}

// commit changes the replica, now that the objects are in: each namespace
// in one transaction, to exactly the owner's signed refs.
func (s *Service) commit(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, of *offer, had held) (int, error) {
	// index-pack --strict checked every object of the pack, and that every
	// object one of them names is in the pack or already here; what is
	// already here is complete (every object arrives through such a check,
	// an Import or a push, which git checks alike, and none is pruned). So
	// no walk of the history is needed: each signed tip must be present.
	tips := dedupe(slices.Clone(of.tips))
	present, err := bare.HasObjects(ctx, tips)
	if err != nil {
		return 0, err
	}
	for _, t := range tips {
		if !present[t] {
			return 0, fmt.Errorf("the holder's objects are incomplete: %w: %s", gitstore.ErrMissingObjects, t)
		}
	}
	// Refs and signed refs change together for a namespace check.
	s.publish.Lock()
	defer s.publish.Unlock()
	if err := s.adoptChain(repo, of.chain, of.proposal); err != nil {
		return 0, err
	}
	unchanged := had.refs != nil && refsFingerprint(bare.Dir, "") == had.fingerprint
	done := 0
	for _, u := range of.updates {
		ns := Namespace(u.node)
		current := had.nsRefs(ns)
		if !unchanged {
			var err error
			if current, err = bare.Refs(ctx, ns); err != nil {
				return done, err
			}
		}
		next := fromWireRefs(u.sr.Refs())
		// Only what changes is in the transaction. current is fresh (listed,
		// or its fingerprint checked, under the publish lock), and a
		// namespace that differs from its signed refs anyway is refused
		// and repaired before it is served (ensureSigned).
		was, is := gitstore.ChangedRefs(current, next)
		if err := bare.UpdateRefs(ctx, ns, was, is); err != nil {
			return done, err
		}
		if _, err := s.store.PutSignedRefs(repo, u.node, u.sr.Seq(), u.raw); err != nil {
			return done, err
		}
		s.markSigned(bare, repo, u.node, u.sr.Seq())
		s.setHEAD(ctx, bare, u.node, of.doc.DefaultBranch(), next)
		done++
	}
	return done, nil
}
