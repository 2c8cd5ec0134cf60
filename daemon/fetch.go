package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/gossip"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

const (
	// fetchTimeout bounds one whole fetch from one holder.
	fetchTimeout = 30 * time.Minute
	// fetchIdle bounds the wait for any frame of a fetch.
	fetchIdle = 60 * time.Second
	// maxServing bounds the fetches a node serves at once.
	maxServing = 8
)

// ---- server ----

// serveFetch answers one fetch stream.
func (n *Node) serveFetch(p *transport.Peer, s *quic.Stream) {
	defer s.Close()
	s.SetReadDeadline(time.Now().Add(fetchIdle))
	typ, payload, err := wire.ReadFetchFrame(s, wire.FrameRequest)
	if err != nil || typ != wire.FrameRequest {
		s.CancelRead(0)
		n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "bad fetch request")
		return
	}
	s.SetReadDeadline(time.Time{})
	req, repo, err := wire.DecodeFetchRequest(payload)
	if err != nil {
		n.gossip.Penalise(p.ID, gossip.PenaltyMalformed, "bad fetch request")
		wire.WriteFetchMessage(s, wire.FrameHeader, wire.FetchHeader{Status: wire.FetchBadInput, Message: "malformed request", Doc: []byte{}, Refs: [][]byte{}})
		return
	}
	select {
	case n.serving <- struct{}{}:
		defer func() { <-n.serving }()
	default:
		wire.WriteFetchMessage(s, wire.FrameHeader, wire.FetchHeader{Status: wire.FetchBusy, Message: "busy", Doc: []byte{}, Refs: [][]byte{}})
		return
	}
	ctx, cancel := context.WithTimeout(p.Context(), fetchTimeout)
	defer cancel()
	s.SetWriteDeadline(time.Now().Add(fetchTimeout))
	if err := n.answerFetch(ctx, s, repo, req); err != nil {
		n.log.Debug("serving fetch", "peer", p.ID.Short(), "repo", repo.String(), "err", err)
		s.CancelWrite(0)
	}
}

func (n *Node) answerFetch(ctx context.Context, w io.Writer, repo identity.RepoID, req *wire.FetchRequest) error {
	docRaw, ok, err := n.store.RepoDoc(repo)
	if err != nil {
		return err
	}
	bare, berr := n.git.OpenBare(n.repoDir(repo))
	if !ok || berr != nil {
		return wire.WriteFetchMessage(w, wire.FrameHeader, wire.FetchHeader{Status: wire.FetchNotFound, Message: "repository not held here", Doc: []byte{}, Refs: [][]byte{}})
	}
	known := map[identity.NodeID]uint64{}
	for _, k := range req.Known {
		id, _ := identity.NodeIDFromPublicKey(k.Node)
		known[id] = k.Seq
	}
	wanted := map[identity.NodeID]bool{}
	for _, ns := range req.Namespaces {
		id, _ := identity.NodeIDFromPublicKey(ns)
		wanted[id] = true
	}
	header := wire.FetchHeader{Status: wire.FetchOK, Doc: docRaw, Refs: [][]byte{}}
	var wants []string
	err = n.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, raw []byte) error {
		if (len(wanted) > 0 && !wanted[node]) || seq <= known[node] || len(header.Refs) >= wire.MaxFetchNamespaces {
			return nil
		}
		sr, err := wire.UnmarshalSignedRefs(raw)
		if err != nil {
			return nil
		}
		header.Refs = append(header.Refs, raw)
		for _, r := range sr.Refs() {
			wants = append(wants, hex.EncodeToString(r.OID))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := wire.WriteFetchMessage(w, wire.FrameHeader, header); err != nil {
		return err
	}
	haves := make([]string, len(req.Haves))
	for i, h := range req.Haves {
		haves[i] = hex.EncodeToString(h)
	}
	fw := &frameWriter{w: w, h: sha256.New()}
	bw := bufio.NewWriterSize(fw, wire.MaxPackChunk)
	if len(wants) > 0 {
		if _, err := bare.PackObjects(ctx, dedupe(wants), haves, bw, gitstore.PackOptions{}); err != nil {
			return wire.WriteFetchMessage(w, wire.FrameError, wire.FetchError{Code: wire.FetchFailed, Message: "packing objects failed"})
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return wire.WriteFetchMessage(w, wire.FrameEnd, wire.FetchEnd{Size: uint64(fw.n), Digest: fw.h.Sum(nil)})
}

// frameWriter cuts a byte stream into pack frames and hashes it. Writes
// come through a bufio.Writer of MaxPackChunk, so each is at most a chunk.
type frameWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (f *frameWriter) Write(b []byte) (int, error) {
	for off := 0; off < len(b); off += wire.MaxPackChunk {
		chunk := b[off:min(len(b), off+wire.MaxPackChunk)]
		if err := wire.WriteFetchFrame(f.w, wire.FramePack, chunk); err != nil {
			return off, err
		}
		f.h.Write(chunk)
		f.n += int64(len(chunk))
	}
	return len(b), nil
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// ---- client ----

// fetchResult is what one fetch changed.
type fetchResult struct {
	namespaces int
	bytes      int64
}

// errNotHeld means the holder does not have the repository.
var errNotHeld = errors.New("holder does not have the repository")

// fetchFrom fetches repo from peer p: every namespace p holds newer signed
// refs of. The replica changes only if everything verified: the document,
// each signed refs' signature, the pack's digest, every object (index-pack
// checks them), and the connectivity of every new tip.
func (n *Node) fetchFrom(ctx context.Context, p *transport.Peer, repo identity.RepoID, progress rpc.ProgressFunc) (fetchResult, error) {
	var res fetchResult
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	s, err := p.OpenStream(ctx, transport.StreamFetch)
	if err != nil {
		return res, err
	}
	defer s.CancelRead(0)
	stop := context.AfterFunc(ctx, func() { s.CancelRead(0); s.CancelWrite(0) })
	defer stop()

	// What we have: the signed refs seqs and every tip in the replica.
	req := wire.FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{}, Known: []wire.KnownRefs{}, Haves: [][]byte{}}
	known := map[identity.NodeID]uint64{}
	_ = n.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, _ []byte) error {
		known[node] = seq
		req.Known = append(req.Known, wire.KnownRefs{Node: node.PublicKey(), Seq: seq})
		return nil
	})
	var bare *gitstore.Bare
	if _, ok, _ := n.store.RepoDoc(repo); ok {
		bare, _ = n.git.OpenBare(n.repoDir(repo))
	}
	if bare != nil {
		haves, err := n.allTips(ctx, bare)
		if err != nil {
			return res, err
		}
		for _, h := range haves[:min(len(haves), wire.MaxHaves)] {
			b, _ := hex.DecodeString(h)
			req.Haves = append(req.Haves, b)
		}
	}
	if err := wire.WriteFetchMessage(s, wire.FrameRequest, req); err != nil {
		return res, err
	}
	s.Close() // our side is done

	s.SetReadDeadline(time.Now().Add(fetchIdle))
	_, payload, err := wire.ReadFetchFrame(s, wire.FrameHeader)
	if err != nil {
		return res, fmt.Errorf("reading the fetch header: %w", err)
	}
	h, err := wire.DecodeFetchHeader(payload)
	if err != nil {
		return res, err
	}
	switch h.Status {
	case wire.FetchOK:
	case wire.FetchNotFound:
		return res, errNotHeld
	default:
		return res, fmt.Errorf("holder answered status %d: %q", h.Status, h.Message)
	}
	doc, err := wire.OpenRepoDoc(h.Doc)
	if err != nil {
		return res, fmt.Errorf("holder sent an invalid repository document: %w", err)
	}
	if doc.Repo() != repo {
		return res, fmt.Errorf("holder sent the document of %s, not %s", doc.Repo(), repo)
	}
	if have, err := n.doc(repo); err == nil && have.Digest() != doc.Digest() {
		return res, fmt.Errorf("holder sent a different document for %s", repo)
	}
	type update struct {
		node identity.NodeID
		sr   *wire.SignedRefs
		raw  []byte
	}
	var updates []update
	var tips []string
	for _, raw := range h.Refs {
		sr, err := wire.OpenSignedRefs(raw)
		if err != nil {
			return res, fmt.Errorf("holder sent signed refs that do not verify: %w", err)
		}
		if sr.Repo() != repo {
			return res, fmt.Errorf("holder sent signed refs of another repository")
		}
		if sr.Seq() <= known[sr.Node()] {
			continue // not newer than ours: ignore (a holder may be behind)
		}
		updates = append(updates, update{sr.Node(), sr, raw})
		for _, r := range sr.Refs() {
			tips = append(tips, hex.EncodeToString(r.OID))
		}
	}

	if bare == nil {
		if bare, err = n.git.InitBare(ctx, n.repoDir(repo)); err != nil {
			return res, err
		}
	}
	// The pack goes straight into index-pack as it arrives.
	pr, pw := io.Pipe()
	indexDone := make(chan error, 1)
	started := false
	var received int64
	digest := sha256.New()
	var end *wire.FetchEnd
	for end == nil {
		s.SetReadDeadline(time.Now().Add(fetchIdle))
		typ, payload, err := wire.ReadFetchFrame(s, wire.FramePack, wire.FrameEnd, wire.FrameError)
		if err != nil {
			pw.CloseWithError(err)
			if started {
				<-indexDone
			}
			return res, fmt.Errorf("receiving the pack: %w", err)
		}
		switch typ {
		case wire.FramePack:
			if !started {
				started = true
				go func() {
					err := bare.IndexPack(ctx, pr, gitstore.IndexOptions{})
					// Unblock the writer if index-pack stopped reading early.
					pr.CloseWithError(fmt.Errorf("index-pack stopped: %v", err))
					indexDone <- err
				}()
			}
			digest.Write(payload)
			received += int64(len(payload))
			if _, err := pw.Write(payload); err != nil {
				<-indexDone
				return res, fmt.Errorf("indexing the pack: %w", err)
			}
			if progress != nil {
				progress(received, 0, "receiving objects")
			}
		case wire.FrameEnd:
			if end, err = wire.DecodeFetchEnd(payload); err != nil {
				pw.CloseWithError(err)
				if started {
					<-indexDone
				}
				return res, err
			}
		case wire.FrameError:
			e, _ := wire.DecodeFetchError(payload)
			pw.CloseWithError(errors.New("holder aborted"))
			if started {
				<-indexDone
			}
			if e != nil {
				return res, fmt.Errorf("holder aborted the fetch: %q", e.Message)
			}
			return res, errors.New("holder aborted the fetch")
		}
	}
	if end.Size != uint64(received) || !bytes.Equal(end.Digest, digest.Sum(nil)) {
		pw.CloseWithError(errors.New("pack digest mismatch"))
		if started {
			<-indexDone
		}
		return res, fmt.Errorf("the pack does not match its digest (%d bytes received, %d announced)", received, end.Size)
	}
	pw.Close()
	if started {
		if err := <-indexDone; err != nil {
			return res, fmt.Errorf("indexing the pack: %w", err)
		}
	}
	res.bytes = received
	if len(updates) == 0 {
		return res, nil
	}
	if err := bare.Connected(ctx, dedupe(tips)); err != nil {
		return res, fmt.Errorf("the holder's objects are incomplete: %w", err)
	}
	// Only now does the replica change: each namespace in one transaction,
	// to exactly the owner's signed refs.
	if _, ok, _ := n.store.RepoDoc(repo); !ok {
		if err := n.store.PutRepoDoc(repo, h.Doc); err != nil {
			return res, err
		}
	}
	for _, u := range updates {
		ns := namespaceOf(u.node)
		current, err := bare.Refs(ctx, ns)
		if err != nil {
			return res, err
		}
		next := fromWireRefs(u.sr.Refs())
		if err := bare.UpdateRefs(ctx, ns, current, next); err != nil {
			return res, err
		}
		if _, err := n.store.PutSignedRefs(repo, u.node, u.sr.Seq(), u.raw); err != nil {
			return res, err
		}
		n.setHEAD(ctx, bare, ns, doc.DefaultBranch(), next)
		res.namespaces++
	}
	return res, nil
}

// allTips lists every object id the replica's refs point at.
func (n *Node) allTips(ctx context.Context, bare *gitstore.Bare) ([]string, error) {
	nss, err := bare.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var tips []string
	for _, ns := range nss {
		refs, err := bare.Refs(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			tips = append(tips, r.OID)
		}
	}
	return dedupe(tips), nil
}

// ---- scheduling ----

// scheduleSync starts a sync of repo in the background (preferring from)
// unless one is running.
func (n *Node) scheduleSync(repo identity.RepoID, from identity.NodeID) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, fetchTimeout)
		defer cancel()
		if _, err := n.sync(ctx, repo, from, nil); err != nil && ctx.Err() == nil {
			n.log.Info("sync failed; will retry", "repo", repo.String(), "err", err)
		}
	}()
}

// sync brings repo up to date from the network: from the preferred node
// first, then from any other holder. A call while a sync of repo runs waits
// for it and makes it run once more (what started it may be newer than
// what the running one saw); the callers share that result.
func (n *Node) sync(ctx context.Context, repo identity.RepoID, prefer identity.NodeID, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	n.repos.mu.Lock()
	if c := n.repos.syncing[repo]; c != nil {
		c.again = true
		n.repos.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return rpc.SyncResult{}, ctx.Err()
		}
	}
	c := &syncCall{done: make(chan struct{})}
	n.repos.syncing[repo] = c
	n.repos.mu.Unlock()
	for {
		res, err := n.syncFromHolders(ctx, repo, prefer, progress)
		n.repos.mu.Lock()
		c.res.RepoID = res.RepoID
		c.res.Bytes += res.Bytes
		c.res.Namespaces += res.Namespaces
		if res.Updated {
			c.res.Updated, c.res.From = true, res.From
		}
		c.err = err
		again := c.again && ctx.Err() == nil && n.behind(repo)
		c.again = false
		if !again {
			delete(n.repos.syncing, repo)
		}
		n.repos.mu.Unlock()
		if !again {
			break
		}
	}
	close(c.done)
	_ = n.updateState(repo, func(st *repoState) {
		if c.err == nil {
			st.LastSync, st.LastError = time.Now(), ""
		} else {
			st.LastError = c.err.Error()
		}
	})
	return c.res, c.err
}

func (n *Node) syncFromHolders(ctx context.Context, repo identity.RepoID, prefer identity.NodeID, progress rpc.ProgressFunc) (rpc.SyncResult, error) {
	res := rpc.SyncResult{RepoID: repo.String()}
	_, hadDoc, _ := n.store.RepoDoc(repo)
	holders := n.holders(repo)
	// Connected holders first (the preferred one, usually the announcer,
	// before the others), then the rest: dialling costs seconds when a
	// holder is gone.
	slices.SortStableFunc(holders, func(a, b identity.NodeID) int {
		rank := func(id identity.NodeID) int {
			r := 0
			if n.tr.Peer(id) == nil {
				r += 2
			}
			if id != prefer {
				r++
			}
			return r
		}
		return rank(a) - rank(b)
	})
	var errs []error
	for _, h := range holders {
		if h == n.ID() || n.recentlyFailed(h) {
			continue
		}
		p, err := n.peerFor(ctx, h)
		if err != nil {
			n.holderFailed(h)
			errs = append(errs, fmt.Errorf("%s: %w", h.Short(), err))
			continue
		}
		fr, err := n.fetchFrom(ctx, p, repo, progress)
		if err != nil {
			n.holderFailed(h)
			n.log.Debug("fetch failed", "repo", repo.String(), "from", h.String(), "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", h.Short(), err))
			continue
		}
		n.repos.mu.Lock()
		delete(n.repos.failed, h)
		n.repos.mu.Unlock()
		res.Bytes += fr.bytes
		if fr.namespaces > 0 {
			res.Updated, res.From = true, h.String()
			res.Namespaces += fr.namespaces
			n.log.Info("repository updated", "repo", repo.String(), "from", h.String(), "namespaces", fr.namespaces, "bytes", fr.bytes)
		}
		if !hadDoc {
			if err := n.announceRepo(repo); err != nil {
				n.log.Warn("announcing replica", "err", err)
			}
			hadDoc = true
		}
		if !n.behind(repo) {
			return res, nil
		}
	}
	if len(errs) == 0 {
		if len(holders) == 0 || (len(holders) == 1 && holders[0] == n.ID()) {
			if hadDoc {
				return res, nil
			}
			return res, rpc.Errorf(rpc.CodeNotFound, "no node is known to hold %s", repo)
		}
		return res, nil
	}
	if hadDoc && !n.behind(repo) {
		return res, nil
	}
	return res, rpc.Errorf(rpc.CodeUnavailable, "could not fetch %s: %v", repo, errors.Join(errs...))
}

// holderRetry is how long a holder that failed is skipped (unless it is
// connected or preferred).
const holderRetry = 30 * time.Second

func (n *Node) holderFailed(id identity.NodeID) {
	n.repos.mu.Lock()
	defer n.repos.mu.Unlock()
	n.repos.failed[id] = time.Now().Add(holderRetry)
}

func (n *Node) recentlyFailed(id identity.NodeID) bool {
	if n.tr.Peer(id) != nil {
		return false
	}
	n.repos.mu.Lock()
	defer n.repos.mu.Unlock()
	return time.Now().Before(n.repos.failed[id])
}

// fetchDialTimeout bounds dialling a holder for a fetch.
const fetchDialTimeout = 5 * time.Second

// peerFor returns a connection to id, dialling its announced addresses.
func (n *Node) peerFor(ctx context.Context, id identity.NodeID) (*transport.Peer, error) {
	if p := n.tr.Peer(id); p != nil {
		return p, nil
	}
	na, _, ok := n.nodeAnnouncement(id)
	if !ok || len(na.Addresses) == 0 {
		return nil, errors.New("no known address")
	}
	var last error
	for _, a := range na.Addresses {
		dctx, cancel := context.WithTimeout(ctx, fetchDialTimeout)
		p, err := n.tr.Dial(dctx, identity.Addr{ID: id, HostPort: a})
		cancel()
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

// holders are the nodes that announced repo.
func (n *Node) holders(repo identity.RepoID) []identity.NodeID {
	var out []identity.NodeID
	_ = n.store.Each(uint8(wire.TypeRepoAnnouncement), []byte(repo.String()), func(a store.Announcement) error {
		out = append(out, a.Origin)
		return nil
	})
	return out
}

// announcedSeqs returns, per namespace owner, the newest signed refs seq
// its owner announced for repo.
func (n *Node) announcedSeqs(repo identity.RepoID) map[identity.NodeID]uint64 {
	out := map[identity.NodeID]uint64{}
	_ = n.store.Each(uint8(wire.TypeRepoAnnouncement), []byte(repo.String()), func(a store.Announcement) error {
		env, err := wire.Unmarshal(a.Raw)
		if err != nil {
			return nil
		}
		body, err := env.DecodeBody()
		if err != nil {
			return nil
		}
		if ra, ok := body.(*wire.RepoAnnouncement); ok && ra.RefsSeq > 0 {
			out[a.Origin] = ra.RefsSeq
		}
		return nil
	})
	return out
}

// behind reports whether an owner announced signed refs newer than ours.
func (n *Node) behind(repo identity.RepoID) bool {
	for node, seq := range n.announcedSeqs(repo) {
		if _, have, ok, _ := n.store.SignedRefs(repo, node); !ok || have < seq {
			return true
		}
	}
	return false
}

// onRepoAnnouncement reacts to a new RepoAnnouncement: fetch at once if it
// names newer refs than the replica has (or a repository not held yet) and
// the node replicates it.
func (n *Node) onRepoAnnouncement(origin identity.NodeID, ra *wire.RepoAnnouncement) {
	if !n.seeded(ra.Repo) {
		return
	}
	_, hasDoc, _ := n.store.RepoDoc(ra.Repo)
	if hasDoc && ra.RefsSeq == 0 {
		return
	}
	if hasDoc {
		if _, have, ok, _ := n.store.SignedRefs(ra.Repo, origin); ok && have >= ra.RefsSeq {
			return
		}
	}
	n.scheduleSync(ra.Repo, origin)
}

// resync is the slow periodic pass: retry every seeded repository that is
// behind (a fetch failed, or an announcement was missed).
func (n *Node) resync() {
	seen := map[identity.RepoID]bool{}
	_ = n.store.Each(uint8(wire.TypeRepoAnnouncement), nil, func(a store.Announcement) error {
		repo, err := identity.ParseRepoID(string(a.Subject))
		if err != nil || seen[repo] {
			return nil
		}
		seen[repo] = true
		_, hasDoc, _ := n.store.RepoDoc(repo)
		if n.seeded(repo) && (!hasDoc || n.behind(repo)) {
			n.scheduleSync(repo, identity.NodeID{})
		}
		return nil
	})
}
