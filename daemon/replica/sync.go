package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// SyncResult is what one sync did.
type SyncResult struct {
	Updated    bool            // some namespace changed
	From       identity.NodeID // the holder the last change came from
	Namespaces int             // namespaces updated
	Bytes      int64           // pack bytes received
}

type syncCall struct {
	done  chan struct{}
	again bool // another sync was asked for while this one ran: run once more
	res   SyncResult
	err   error
}

// schedule queues a sync of repo (preferring from) for Serve to run; a full
// queue drops it, and the periodic pass catches up.
func (s *Service) schedule(repo identity.RepoID, from identity.NodeID) {
	select {
	case s.queue <- syncRequest{repo, from}:
	default:
		s.log.Debug("sync queue full; leaving the repository to the periodic pass", "repo", repo)
	}
}

// Sync brings repo up to date from the network: from the preferred node
// first, then from any other holder. A call while a sync of repo runs waits
// for it and makes it run once more (what started it may be newer than
// what the running one saw); the callers share that result.
func (s *Service) Sync(ctx context.Context, repo identity.RepoID, prefer identity.NodeID, progress ProgressFunc) (SyncResult, error) {
	s.mu.Lock()
	if c := s.syncing[repo]; c != nil {
		c.again = true
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return SyncResult{}, ctx.Err()
		}
	}
	c := &syncCall{done: make(chan struct{})}
	s.syncing[repo] = c
	s.mu.Unlock()
	s.followChanged() // a node follows what it is syncing
	defer s.followChanged()
	s.emit(Event{Kind: SyncStarted, Repo: repo, Node: prefer})
	for {
		res, err := s.syncFromHolders(ctx, repo, prefer, progress)
		s.mu.Lock()
		c.res.Bytes += res.Bytes
		c.res.Namespaces += res.Namespaces
		if res.Updated {
			c.res.Updated, c.res.From = true, res.From
		}
		c.err = err
		again := c.again && ctx.Err() == nil && s.Behind(repo)
		c.again = false
		if !again {
			delete(s.syncing, repo)
		}
		s.mu.Unlock()
		if !again {
			break
		}
	}
	close(c.done)
	if c.err != nil {
		s.emit(Event{Kind: SyncFailed, Repo: repo, Err: c.err})
	} else {
		s.emit(Event{Kind: SyncFinished, Repo: repo, Node: c.res.From, Bytes: c.res.Bytes})
	}
	_ = s.updateState(repo, func(st *repoState) {
		if c.err == nil {
			st.LastSync, st.LastError = time.Now(), ""
		} else {
			st.LastError = c.err.Error()
		}
	})
	return c.res, c.err
}

// Syncing reports whether a sync of repo runs now.
func (s *Service) Syncing(repo identity.RepoID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncing[repo] != nil
}

func (s *Service) syncFromHolders(ctx context.Context, repo identity.RepoID, prefer identity.NodeID, progress ProgressFunc) (SyncResult, error) {
	var res SyncResult
	_, hadDoc, _ := s.store.RepoDoc(repo)
	holders := s.rankHolders(repo, prefer)
	if len(holders) == 0 && !hadDoc && s.cfg.DiscoverWait > 0 {
		// Peers answer a new subscription with the holders they know of.
		s.awaitHolder(ctx, repo)
		holders = s.rankHolders(repo, prefer)
	}
	var errs []error
	servedByRelay := false // a connected relay answered this pass
	tried := map[identity.NodeID]bool{}
	next := func() (identity.NodeID, bool) {
		for range 2 {
			for _, h := range s.withRelays(holders) {
				if !tried[h] {
					tried[h] = true
					return h, true
				}
			}
			// Holders heard of while the others were tried: the first
			// announcement a new node hears may be of one that is gone.
			holders = s.rankHolders(repo, prefer)
		}
		return identity.NodeID{}, false
	}
	for h, ok := next(); ok; h, ok = next() {
		if servedByRelay && !s.cfg.Net.Connected(h) {
			// Never wait on dialling (perhaps an address behind NAT that
			// cannot answer) when a connected relay has the repository:
			// when it gets newer refs it announces them (Forward), and that
			// syncs again. Other holders do not forward: dial on.
			break
		}
		if err := s.backedOff(h); err != nil {
			errs = append(errs, fmt.Errorf("%s (skipped for now): %w", h.Short(), err))
			continue
		}
		if s.recentlyFailed(h) {
			continue
		}
		fr, err := s.FetchFrom(ctx, h, repo, progress)
		if errors.Is(err, errNotHeld) && !slices.Contains(holders, h) {
			continue // a relay that does not hold it: no holder failed
		}
		if err != nil {
			s.holderFailed(h)
			if errors.Is(err, ErrTooLarge) {
				s.overBudget(h, repo, err)
			}
			s.log.Debug("fetching from a holder failed; trying the next", "repo", repo, "from", h, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", h.Short(), err))
			continue
		}
		s.mu.Lock()
		delete(s.failed, h)
		s.served[h] = time.Now()
		s.mu.Unlock()
		servedByRelay = servedByRelay || (s.cfg.Net.Connected(h) && s.cfg.IsRelay(h))
		res.Bytes += fr.Bytes
		if fr.Namespaces > 0 {
			res.Updated, res.From = true, h
			res.Namespaces += fr.Namespaces
			s.log.Info("fetched repository updates", "repo", repo, "from", h, "namespaces", fr.Namespaces, "bytes", fr.Bytes)
			s.cfg.OnUpdated(repo)
		}
		// Announce a first replica, and every update: what it says of the
		// creator's refs tells others this node is in sync (relays thereby
		// also forward, Config.Forward).
		if !hadDoc || fr.Namespaces > 0 {
			if err := s.announce(repo); err != nil {
				s.log.Warn("announcing our replica failed", "repo", repo, "err", err)
			}
			hadDoc = true
		}
		if !s.Behind(repo) {
			return res, nil
		}
	}
	switch {
	case len(errs) == 0 && len(holders) == 0 && !hadDoc:
		return res, errorf(ErrNotFound, "no node is known to hold %s", repo)
	case len(errs) == 0, hadDoc && !s.Behind(repo):
		return res, nil
	}
	return res, errorf(ErrUnavailable, "could not fetch %s: %w", repo, errors.Join(errs...))
}

// withRelays puts the connected relays that did not announce repo after
// its connected holders: a relay replicates every repository it hears of,
// so it may be fetching this one now, and then serves it as it arrives
// (spec/repo.md §4.1); asking costs no dial.
func (s *Service) withRelays(holders []identity.NodeID) []identity.NodeID {
	connected := 0
	for connected < len(holders) && s.cfg.Net.Connected(holders[connected]) {
		connected++
	}
	var relays []identity.NodeID
	for _, r := range s.cfg.Relays() {
		if r != s.id && !slices.Contains(holders, r) {
			relays = append(relays, r)
		}
	}
	return slices.Concat(holders[:connected], relays, holders[connected:])
}

// FetchFrom runs one fetch of repo from holder h, whatever its rank.
func (s *Service) FetchFrom(ctx context.Context, h identity.NodeID, repo identity.RepoID, progress ProgressFunc) (FetchResult, error) {
	st, err := s.cfg.Net.OpenFetch(ctx, h)
	if err != nil {
		return FetchResult{}, err
	}
	return s.fetch(ctx, st, repo, progress)
}

// rankHolders orders repo's holders other than this node: connected ones
// first (the preferred one, usually the announcer, before the others),
// then the rest, because dialling costs seconds when a holder is gone.
func (s *Service) rankHolders(repo identity.RepoID, prefer identity.NodeID) []identity.NodeID {
	holders := slices.DeleteFunc(s.Holders(repo), func(id identity.NodeID) bool { return id == s.id })
	rank := func(id identity.NodeID) int {
		r := 0
		if !s.cfg.Net.Connected(id) {
			r += 2
		}
		if id != prefer {
			r++
		}
		return r
	}
	slices.SortStableFunc(holders, func(a, b identity.NodeID) int { return rank(a) - rank(b) })
	return holders
}

// servedRecently is how long a holder that served a fetch counts as one
// this node replicates from.
const servedRecently = 24 * time.Hour

// ServedUs reports whether id served this node a fetch in the last day:
// a peer worth keeping a connection slot for.
func (s *Service) ServedUs(id identity.NodeID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.served[id]
	return ok && time.Since(t) < servedRecently
}

func (s *Service) holderFailed(id identity.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[id] = time.Now().Add(holderRetry)
}

func (s *Service) recentlyFailed(id identity.NodeID) bool {
	if s.cfg.Net.Connected(id) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.failed[id])
}

// Holders are the nodes that announced repo.
func (s *Service) Holders(repo identity.RepoID) []identity.NodeID {
	var out []identity.NodeID
	_ = s.store.EachRepoAnnouncement(&repo, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		if !ra.Withdrawn { // a withdrawal replaced that node's announcement
			out = append(out, a.Origin)
		}
		return nil
	})
	return out
}

// Behind reports whether a node announced signed refs of repo newer than
// those the replica holds.
func (s *Service) Behind(repo identity.RepoID) bool {
	behind := false
	_ = s.store.EachRepoAnnouncement(&repo, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		if ra.RefsSeq == 0 {
			return nil
		}
		if _, have, ok, _ := s.store.SignedRefs(repo, a.Origin); !ok || have < ra.RefsSeq {
			behind = true
			return store.ErrStop
		}
		return nil
	})
	return behind
}

// HandleAnnouncement reacts to a new RepoAnnouncement of another node:
// fetch at once if it names newer refs than the replica has (or a
// repository not held yet) and the node replicates it.
func (s *Service) HandleAnnouncement(origin identity.NodeID, ra *wire.RepoAnnouncement) {
	if ra.Withdrawn {
		return // the origin let go of it: nothing to fetch
	}
	s.heardOf(ra.Repo)
	if !s.Seeded(ra.Repo) {
		return
	}
	_, hasDoc, _ := s.store.RepoDoc(ra.Repo)
	if hasDoc && ra.RefsSeq == 0 && !s.Behind(ra.Repo) {
		return
	}
	if hasDoc {
		// An announcement of a holder that has nothing newer of its own
		// still helps while the replica is behind: a relay announces
		// again when it stored others' newer refs (Config.Forward).
		if _, have, ok, _ := s.store.SignedRefs(ra.Repo, origin); ok && have >= ra.RefsSeq && !s.Behind(ra.Repo) {
			return
		}
	}
	s.schedule(ra.Repo, origin)
}

// resync is the slow periodic pass: retry every seeded repository that is
// behind (a fetch failed, or an announcement was missed).
func (s *Service) resync() {
	s.forgetUnreachable()
	s.expireSeedRequests(time.Now())
	seen := map[identity.RepoID]bool{}
	_ = s.store.EachRepoAnnouncement(nil, func(_ store.Announcement, ra *wire.RepoAnnouncement) error {
		if seen[ra.Repo] {
			return nil
		}
		seen[ra.Repo] = true
		_, hasDoc, _ := s.store.RepoDoc(ra.Repo)
		if s.Seeded(ra.Repo) && (!hasDoc || s.Behind(ra.Repo)) {
			s.schedule(ra.Repo, identity.NodeID{})
		}
		return nil
	})
}

// PeerConnected is told of a new connection to id: a holder that comes
// back (after a restart, a network cut) is tried at once for every seeded
// repository it holds that is behind or not held yet, instead of waiting
// for the periodic pass.
func (s *Service) PeerConnected(id identity.NodeID) {
	s.mu.Lock()
	delete(s.failed, id)
	s.mu.Unlock()
	_ = s.store.EachRepoAnnouncement(nil, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		if a.Origin != id || !s.Seeded(ra.Repo) {
			return nil
		}
		if _, hasDoc, _ := s.store.RepoDoc(ra.Repo); !hasDoc || s.Behind(ra.Repo) {
			s.schedule(ra.Repo, id)
		}
		return nil
	})
}

// awaitHolder waits until some node other than this one announces repo,
// at most DiscoverWait. A holder this node is connected to ends the wait
// at once; one it would have to dial, only holderGrace later: the first
// announcement a peer's snapshot brings may be of a node that is gone
// (newest first), and the peer's own, a moment behind it, costs no dial.
func (s *Service) awaitHolder(ctx context.Context, repo identity.RepoID) {
	t := time.NewTimer(s.cfg.DiscoverWait)
	defer t.Stop()
	var grace <-chan time.Time
	for {
		ch := s.nextAnnouncement(repo)
		if holders := s.rankHolders(repo, identity.NodeID{}); len(holders) > 0 {
			if s.cfg.Net.Connected(holders[0]) { // ranked connected first
				return
			}
			if grace == nil {
				grace = time.After(s.cfg.HolderGrace)
			}
		}
		select {
		case <-ch:
		case <-grace:
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// heardOf wakes what waits for an announcement of repo.
func (s *Service) heardOf(repo identity.RepoID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.heard[repo]; ch != nil {
		close(ch)
		delete(s.heard, repo)
	}
}

// Reachability of holders: a repository announced only by nodes this node
// never reached may be made up (anyone can sign an announcement); it is
// listed as "heard of" and forgotten after heardOfExpiry.
const (
	reachedRecently = 24 * time.Hour
	heardOfExpiry   = time.Hour
)

// Reached records that this node is connected to id.
func (s *Service) Reached(id identity.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reached[id] = time.Now()
}

// anyReachable reports whether one of holders is connected or was in the
// last day.
func (s *Service) anyReachable(holders []identity.NodeID) bool {
	for _, h := range holders {
		if h == s.id || s.cfg.Net.Connected(h) {
			return true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range holders {
		if t, ok := s.reached[h]; ok && time.Since(t) < reachedRecently {
			return true
		}
	}
	return false
}

// forgetUnreachable drops the announcements of repositories the node holds
// nothing of and whose holders it never reached, once the newest of them
// is older than heardOfExpiry.
func (s *Service) forgetUnreachable() {
	newest := map[identity.RepoID]uint64{}
	holders := map[identity.RepoID][]identity.NodeID{}
	_ = s.store.EachRepoAnnouncement(nil, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		newest[ra.Repo] = max(newest[ra.Repo], a.Timestamp)
		holders[ra.Repo] = append(holders[ra.Repo], a.Origin)
		return nil
	})
	cutoff := uint64(time.Now().Add(-heardOfExpiry).UnixMilli())
	for repo, ts := range newest {
		if ts >= cutoff || s.anyReachable(holders[repo]) || s.Syncing(repo) {
			continue
		}
		if _, ok, _ := s.store.RepoDoc(repo); ok {
			continue
		}
		if err := s.store.ForgetSubject(uint8(wire.TypeRepoAnnouncement), []byte(repo.String())); err != nil {
			s.log.Warn("forgetting a repository no reachable node holds failed", "repo", repo, "err", err)
			continue
		}
		s.log.Info("forgot a repository no reachable node holds", "repo", repo)
	}
}

// HolderState is how far one holder is with the creator's refs.
type HolderState struct {
	Node   identity.NodeID
	InSync bool          // it holds the newest signed refs of the creator heard of
	Lag    time.Duration // how much older its copy is (the seqs are ms timestamps)
	Known  bool          // it said which it holds
}

// HolderStates lists repo's holders with whether each holds the newest
// creator's signed refs this node heard of, sorted like Holders.
func (s *Service) HolderStates(repo identity.RepoID) []HolderState {
	doc, err := s.Doc(repo)
	if err != nil {
		return nil
	}
	creator := PrimaryDelegate(doc)
	held := map[identity.NodeID]uint64{}
	var newest uint64
	if _, seq, ok, _ := s.store.SignedRefs(repo, creator); ok {
		newest = seq
	}
	var order []identity.NodeID
	_ = s.store.EachRepoAnnouncement(&repo, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		if ra.Withdrawn {
			return nil
		}
		seq := ra.CanonicalSeq
		if a.Origin == creator {
			seq = max(seq, ra.RefsSeq)
		}
		held[a.Origin] = seq
		newest = max(newest, seq)
		order = append(order, a.Origin)
		return nil
	})
	out := make([]HolderState, 0, len(order))
	for _, id := range order {
		seq := held[id]
		st := HolderState{Node: id, Known: seq > 0, InSync: seq > 0 && seq >= newest}
		if st.Known {
			st.Lag = time.Duration(newest-min(seq, newest)) * time.Millisecond
		}
		out = append(out, st)
	}
	return out
}
