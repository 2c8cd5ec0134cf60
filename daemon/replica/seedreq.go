package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Seed requests (spec/node.md §6): a node asks its peers to seed a
// repository until enough holders are in sync; a node that accepts
// requests (a relay, or one started with --accept-seed-requests) seeds it
// within budgets per requester and in all, and fetches it.

// SeedBudget bounds what seed requests can make a node store. Zero fields
// take the defaults of DefaultSeedBudget.
type SeedBudget struct {
	PerRequester      int   // repositories one requester may have seeded here
	PerRequesterBytes int64 // disk those repositories may hold together
	Total             int   // repositories seeded on request, all requesters
	TotalBytes        int64 // disk all of them may hold
}

// DefaultSeedBudget: 8 repositories and 512 MiB per requester, 128
// repositories and 4 GiB in all.
func DefaultSeedBudget() SeedBudget {
	return SeedBudget{PerRequester: 8, PerRequesterBytes: 512 << 20, Total: 128, TotalBytes: 4 << 30}
}

func (b SeedBudget) withDefaults() SeedBudget {
	d := DefaultSeedBudget()
	if b.PerRequester <= 0 {
		b.PerRequester = d.PerRequester
	}
	if b.PerRequesterBytes <= 0 {
		b.PerRequesterBytes = d.PerRequesterBytes
	}
	if b.Total <= 0 {
		b.Total = d.Total
	}
	if b.TotalBytes <= 0 {
		b.TotalBytes = d.TotalBytes
	}
	return b
}

// Timeouts of the seed exchange.
const (
	seedTimeout = 10 * time.Second // one request and its answer
	// MaxReplicas bounds the replicas one seed request run asks for.
	MaxReplicas = 16
)

// seedRequested marks a repository seeded because a peer asked
// (repoState.Requester says who); its fetches get the seed budget.
const seedRequested = "requested"

// seedRequestExpiry is how long an accepted request may go without the
// repository ever being fetched before it is dropped, giving its budget
// back: a requester cannot hold slots with repositories nobody serves.
const seedRequestExpiry = time.Hour

// ServeSeedRequest answers one seed request from peer on st.
func (s *Service) ServeSeedRequest(peer identity.NodeID, st Stream) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(seedTimeout))
	st.SetWriteDeadline(time.Now().Add(seedTimeout))
	b, err := wire.ReadSeedFrame(st)
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			s.cfg.OnMisbehave(peer, "bad seed request frame")
		}
		return
	}
	var reply wire.SeedReply
	if req, err := wire.UnmarshalSeedRequest(b); err != nil {
		s.cfg.OnMisbehave(peer, "bad seed request")
		reply = wire.SeedReply{Code: wire.SeedBadRequest, Reason: "malformed or badly signed request"}
	} else {
		reply = s.AcceptSeed(peer, req, time.Now())
	}
	s.log.Debug("seed request", "peer", peer.Short(), "code", reply.Code, "reason", reply.Reason)
	if out, err := reply.Marshal(); err == nil {
		_ = wire.WriteSeedFrame(st, out)
	}
}

// AcceptSeed decides a verified request that peer sent, and on
// acceptance marks the repository seeded and schedules its fetch (from
// the requester first). Asking again is answered as the first time was,
// without charging the budget twice.
func (s *Service) AcceptSeed(peer identity.NodeID, req *wire.SeedRequest, now time.Time) wire.SeedReply {
	refuse := func(code uint64, format string, a ...any) wire.SeedReply {
		return wire.SeedReply{Code: code, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case !s.cfg.AcceptSeeds:
		return refuse(wire.SeedNotAccepting, "this node takes no seed requests")
	case req.Requester != peer:
		return refuse(wire.SeedBadRequest, "signed by %s, not by the peer", req.Requester.Short())
	}
	if err := req.Fresh(now); err != nil {
		return refuse(wire.SeedBadRequest, "stale request: the clocks differ by more than %v", wire.MaxSeedSkew)
	}
	s.seedMu.Lock() // the budget check and the marking are one step
	defer s.seedMu.Unlock()
	st := s.state(req.Repo)
	switch {
	case st.Path != "" || st.Seed == seedYes || st.Seed == seedRequested:
		return wire.SeedReply{Code: wire.SeedAccepted, Reason: "seeded already"}
	case st.Seed == seedNo || st.Removed:
		return refuse(wire.SeedRefused, "this node's owner stopped seeding the repository")
	}
	if s.cfg.DiskLow != nil && s.cfg.DiskLow() != nil {
		return refuse(wire.SeedRefused, "disk space low")
	}
	if why := s.seedBudgetFull(peer); why != "" {
		return refuse(wire.SeedOverBudget, "%s", why)
	}
	if err := s.updateState(req.Repo, func(st *repoState) { st.Seed, st.Requester, st.Requested = seedRequested, peer.String(), now }); err != nil {
		return refuse(wire.SeedRefused, "cannot record the request")
	}
	s.log.Info("seeding on request", "repo", req.Repo.String(), "requester", peer.Short())
	s.followChanged()
	s.schedule(req.Repo, peer)
	return wire.SeedReply{Code: wire.SeedAccepted, Reason: "seeding"}
}

// expireSeedRequests drops the requests accepted more than
// seedRequestExpiry before now whose repository was never fetched.
func (s *Service) expireSeedRequests(now time.Time) {
	dropped := false
	for _, repos := range s.requested() {
		for _, repo := range repos {
			st := s.state(repo)
			if _, held, _ := s.store.RepoDoc(repo); held || now.Sub(st.Requested) < seedRequestExpiry {
				continue
			}
			s.log.Info("dropping a seed request nobody could serve", "repo", repo.String(), "requester", st.Requester)
			if err := s.updateState(repo, func(st *repoState) { st.Seed, st.Requester, st.Requested = seedDefault, "", time.Time{} }); err != nil {
				s.log.Warn("dropping a seed request", "repo", repo.String(), "err", err)
			}
			dropped = true
		}
	}
	if dropped {
		s.followChanged()
	}
}

// requested lists the repositories seeded on request, by requester.
func (s *Service) requested() map[string][]identity.RepoID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]identity.RepoID{}
	for repo, st := range s.states {
		if st.Seed == seedRequested && st.Path == "" {
			out[st.Requester] = append(out[st.Requester], repo)
		}
	}
	return out
}

// seedBudgetFull says why one more repository for requester would cross
// a seed budget, or "". The counts are checked first: they cost no disk
// walk, so a flood over them stays cheap.
func (s *Service) seedBudgetFull(requester identity.NodeID) string {
	b := s.cfg.SeedBudget
	byRequester := s.requested()
	mine, total := len(byRequester[requester.String()]), 0
	for _, repos := range byRequester {
		total += len(repos)
	}
	switch {
	case mine >= b.PerRequester:
		return fmt.Sprintf("%d repositories of this requester are seeded here, the most one requester may have", mine)
	case total >= b.Total:
		return fmt.Sprintf("%d repositories are seeded here on request, the most this node takes", total)
	}
	mineBytes, totalBytes := s.seedUsage(requester.String())
	switch {
	case mineBytes >= b.PerRequesterBytes:
		return fmt.Sprintf("this requester's repositories hold %s here, the budget of one requester", mib(mineBytes))
	case totalBytes >= b.TotalBytes:
		return fmt.Sprintf("repositories seeded on request hold %s here, the node's budget", mib(totalBytes))
	}
	return ""
}

// seedUsage is what the replicas of the repositories seeded on request
// hold on disk: those of requester, and all of them.
func (s *Service) seedUsage(requester string) (mine, total int64) {
	for who, repos := range s.requested() {
		for _, repo := range repos {
			used := diskUsage(s.Dir(repo))
			total += used
			if who == requester {
				mine += used
			}
		}
	}
	return mine, total
}

// seedFetchBudget is the budget of one fetch of a repository seeded on
// request: what is left of its requester's and of the node's seed bytes
// (the replica's own usage included).
func (s *Service) seedFetchBudget(requester string) budget {
	mineBytes, totalBytes := s.seedUsage(requester)
	b := budget{limit: s.cfg.MaxPackSize, why: fmt.Sprintf("the pack budget of %s", mib(s.cfg.MaxPackSize))}
	if left := s.cfg.SeedBudget.PerRequesterBytes - mineBytes; left < b.limit {
		b = budget{limit: left, why: fmt.Sprintf("the seed budget of %s per requester, of which its repositories hold %s",
			mib(s.cfg.SeedBudget.PerRequesterBytes), mib(mineBytes))}
	}
	if left := s.cfg.SeedBudget.TotalBytes - totalBytes; left < b.limit {
		b = budget{limit: left, why: fmt.Sprintf("the node's seed budget of %s, of which repositories seeded on request hold %s",
			mib(s.cfg.SeedBudget.TotalBytes), mib(totalBytes))}
	}
	return b
}

// SeedAnswer is one peer's answer to a seed request.
type SeedAnswer struct {
	Node   identity.NodeID
	Code   uint64 // a wire.Seed… code; meaningless when Err is set
	Reason string
	Err    error // the request did not get an answer
}

// Accepted reports whether the peer seeds the repository.
func (a SeedAnswer) Accepted() bool { return a.Err == nil && a.Code == wire.SeedAccepted }

// SeedResult is what RequestSeeds did.
type SeedResult struct {
	Answers []SeedAnswer // one per peer asked, in order
	InSync  int          // holders other than this node with the newest canonical refs, at the end
}

// Accepted counts the answers that accepted.
func (r SeedResult) Accepted() int {
	n := 0
	for _, a := range r.Answers {
		if a.Accepted() {
			n++
		}
	}
	return n
}

// RequestSeeds asks peers, in order, to seed repo until replicas of them
// accepted or are in sync already, then waits up to wait for replicas
// holders other than this node to be in sync.
func (s *Service) RequestSeeds(ctx context.Context, repo identity.RepoID, replicas int, peers []identity.NodeID, wait time.Duration) (SeedResult, error) {
	if replicas < 1 || replicas > MaxReplicas {
		return SeedResult{}, errorf(ErrInvalid, "replicas %d: want 1-%d", replicas, MaxReplicas)
	}
	if _, err := s.Doc(repo); err != nil {
		return SeedResult{}, errorf(ErrNotFound, "%s is not replicated on this node: nothing to ask others to seed", repo)
	}
	req, err := wire.SignSeedRequest(s.cfg.Key, repo, time.Now())
	if err != nil {
		return SeedResult{}, err
	}
	var res SeedResult
	inSync := s.inSyncHolders(repo)
	have := len(inSync)
	for _, p := range peers {
		if have >= replicas {
			break
		}
		if p == s.id || slices.Contains(inSync, p) {
			continue
		}
		a := s.askSeed(ctx, p, req)
		res.Answers = append(res.Answers, a)
		if a.Accepted() {
			have++
		}
	}
	res.InSync = s.awaitInSync(ctx, repo, replicas, wait)
	return res, nil
}

// askSeed sends req to peer and reads the answer.
func (s *Service) askSeed(ctx context.Context, peer identity.NodeID, req *wire.SeedRequest) SeedAnswer {
	a := SeedAnswer{Node: peer}
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	st, err := s.cfg.Net.OpenSeed(ctx, peer)
	if err != nil {
		a.Err = err
		return a
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	st.SetReadDeadline(time.Now().Add(seedTimeout))
	st.SetWriteDeadline(time.Now().Add(seedTimeout))
	b, err := req.Marshal()
	if err == nil {
		err = wire.WriteSeedFrame(st, b)
	}
	var reply *wire.SeedReply
	if err == nil {
		if b, err = wire.ReadSeedFrame(st); err == nil {
			reply, err = wire.UnmarshalSeedReply(b)
		}
	}
	if err != nil {
		a.Err = fmt.Errorf("asking %s to seed: %w", peer.Short(), err)
		return a
	}
	a.Code, a.Reason = reply.Code, reply.Reason
	return a
}

// inSyncHolders lists the holders other than this node that hold the
// newest canonical refs heard of.
func (s *Service) inSyncHolders(repo identity.RepoID) []identity.NodeID {
	var out []identity.NodeID
	for _, h := range s.HolderStates(repo) {
		if h.InSync && h.Node != s.id {
			out = append(out, h.Node)
		}
	}
	return out
}

// awaitInSync waits up to wait until replicas holders other than this
// node are in sync, waking on every announcement of repo, and returns how
// many are.
func (s *Service) awaitInSync(ctx context.Context, repo identity.RepoID, replicas int, wait time.Duration) int {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		next := s.nextAnnouncement(repo)
		n := len(s.inSyncHolders(repo))
		if n >= replicas {
			return n
		}
		select {
		case <-next:
		case <-t.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
}

// nextAnnouncement returns a channel closed when repo is next announced.
func (s *Service) nextAnnouncement(repo identity.RepoID) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.heard[repo]
	if ch == nil {
		ch = make(chan struct{})
		s.heard[repo] = ch
	}
	return ch
}
