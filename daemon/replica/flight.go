package replica

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Fetches in flight (spec/repo.md §4.1). While this node fetches a
// repository it holds nothing of, a fetch of it from a client that holds
// nothing of it either is served the frames this node receives, as they
// arrive (a relay's store and forward then costs one transfer, not two in
// a row); other fetches of it wait until this node's sync ends and are
// answered from what it committed. Both kinds of waiting are bounded: how
// many (takeWait), how long (holdWait, followIdle) and how far behind a
// follower may fall (followQueue).

const (
	// holdWait bounds the wait of a fetch for this node's sync of the
	// repository, before it is answered from what the node holds then.
	holdWait = 10 * time.Second
	// followIdle bounds the wait of a follower for the next frame.
	followIdle = 10 * time.Second
	// followQueue is how many frames a follower may fall behind the fetch
	// it follows (64 KiB each at most): one further behind is cut off.
	followQueue = 64
	// waitPerPeer bounds the waiting fetches of one peer.
	waitPerPeer = 2
)

// frame is one fetch frame passed on to followers.
type frame struct {
	typ     byte
	payload []byte
}

// flight is this node's first fetch of a repository, as followers see it.
// Its methods do nothing on a nil flight (a fetch nobody may follow).
type flight struct {
	ended chan struct{} // closed when the fetch is over

	mu        sync.Mutex
	header    []byte // the verified header frame's payload, once read
	packed    bool   // a pack or end frame went by, or the fetch ended: too late to follow
	followers map[*follower]bool
}

// follower is a fetch served from a flight: its queue of frames is closed
// after the end frame, or early (why says why) when it fell behind or the
// fetch failed.
type follower struct {
	frames chan frame
	why    string // set before frames is closed
}

// beginFlight registers this node's first fetch of repo for followers; nil
// if another fetch of it is in flight.
func (s *Service) beginFlight(repo identity.RepoID) *flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flights[repo] != nil {
		return nil
	}
	f := &flight{ended: make(chan struct{}), followers: map[*follower]bool{}}
	s.flights[repo] = f
	close(s.flightWake) // wake fetches waiting for one
	s.flightWake = make(chan struct{})
	return f
}

// endFlight unregisters f once the fetch is over; followers still there
// did not get the end frame, and get an error frame.
func (s *Service) endFlight(repo identity.RepoID, f *flight) {
	if f == nil {
		return
	}
	s.mu.Lock()
	delete(s.flights, repo)
	s.mu.Unlock()
	f.mu.Lock()
	f.packed = true
	for fl := range f.followers { // none of them got the end frame
		f.cutLocked(fl, "the fetch it followed failed")
	}
	f.mu.Unlock()
	close(f.ended)
}

// pass hands a frame this node received to the followers: the header
// once it verified, pack frames as they come, the end frame once the
// whole pack checked out (then they are done).
func (f *flight) pass(typ byte, payload []byte) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if typ == wire.FrameHeader {
		f.header = payload
	} else {
		f.packed = true // a follower must have every pack frame
	}
	for fl := range f.followers {
		f.passLocked(fl, frame{typ, payload})
		if typ == wire.FrameEnd {
			f.cutLocked(fl, "")
		}
	}
}

// passLocked queues fr for fl, or cuts fl off if its queue is full: the
// fetch never waits for a follower.
func (f *flight) passLocked(fl *follower, fr frame) {
	select {
	case fl.frames <- fr:
	default:
		f.cutLocked(fl, "fell behind the fetch it followed")
	}
}

// cutLocked closes fl's queue; why says why, if it was cut short.
func (f *flight) cutLocked(fl *follower, why string) {
	if f.followers[fl] {
		delete(f.followers, fl)
		fl.why = why
		close(fl.frames)
	}
}

// join makes a follower of a client holding nothing of the repository,
// while no pack frame went by; nil otherwise.
func (f *flight) join(req *wire.FetchRequest) *follower {
	if len(req.Namespaces) > 0 || len(req.Known) > 0 || len(req.Haves) > 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.packed {
		return nil
	}
	fl := &follower{frames: make(chan frame, followQueue)}
	if f.header != nil {
		fl.frames <- frame{wire.FrameHeader, f.header}
	}
	f.followers[fl] = true
	return fl
}

// leave drops fl (its client went away).
func (f *flight) leave(fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutLocked(fl, "gone")
}

// waitForFlight serves a fetch of repo, which this node does not hold,
// while the node fetches or syncs it: it follows the fetch in flight if
// it can, else waits (holdWait at most) until nothing is in flight any
// more, after which the caller answers as usual. It reports whether it
// answered.
func (s *Service) waitForFlight(ctx context.Context, w io.Writer, peer identity.NodeID, repo identity.RepoID, req *wire.FetchRequest) bool {
	if f, c, _ := s.inFlight(repo); (f == nil && c == nil) || s.holds(repo) {
		return false
	}
	release, ok := s.takeWait(peer)
	if !ok {
		return false
	}
	defer release()
	hold := time.NewTimer(holdWait)
	defer hold.Stop()
	for !s.holds(repo) {
		f, c, wake := s.inFlight(repo)
		var synced <-chan struct{} // nil: no sync to wait for
		if c != nil {
			synced = c.done
		}
		switch {
		case f != nil:
			if fl := f.join(req); fl != nil {
				s.follow(ctx, w, f, fl)
				return true
			}
			wake = f.ended
		case c == nil:
			return false
		}
		select {
		case <-wake:
		case <-synced:
		case <-hold.C:
			return false
		case <-ctx.Done():
			return true
		}
	}
	return false
}

// inFlight returns repo's fetch in flight and sync, each nil if none, and
// the channel closed when the next flight begins.
func (s *Service) inFlight(repo identity.RepoID) (*flight, *syncCall, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flights[repo], s.syncing[repo], s.flightWake
}

// follow writes fl's frames to w until the last one; a follower cut off
// or kept waiting followIdle gets an error frame.
func (s *Service) follow(ctx context.Context, w io.Writer, f *flight, fl *follower) {
	defer f.leave(fl)
	idle := time.NewTimer(followIdle)
	defer idle.Stop()
	for {
		select {
		case fr, ok := <-fl.frames:
			if !ok {
				writeError(w, fl.why)
				return
			}
			if wire.WriteFetchFrame(w, fr.typ, fr.payload) != nil || fr.typ == wire.FrameEnd {
				return
			}
			idle.Reset(followIdle)
		case <-idle.C:
			writeError(w, "the fetch it followed stalled")
			return
		case <-ctx.Done():
			return
		}
	}
}

// takeWait takes a place among the fetches waiting for fetches in flight:
// at most half the serving slots in all, waitPerPeer for one peer.
func (s *Service) takeWait(peer identity.NodeID) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting >= max(1, s.cfg.MaxServing/2) || s.waitingBy[peer] >= waitPerPeer {
		return nil, false
	}
	s.waiting++
	s.waitingBy[peer]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.waiting--
		if s.waitingBy[peer]--; s.waitingBy[peer] == 0 {
			delete(s.waitingBy, peer)
		}
	}, true
}

// holds reports whether the node holds repo's document.
func (s *Service) holds(repo identity.RepoID) bool {
	_, ok, _ := s.store.RepoDoc(repo)
	return ok
}

func writeError(w io.Writer, msg string) {
	_ = wire.WriteFetchMessage(w, wire.FrameError, wire.FetchError{Code: wire.FetchFailed, Message: msg})
}
