package replica

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Per-repository seeding choice, overriding the node's policy.
const (
	seedDefault = ""
	seedYes     = "seed"
	seedNo      = "unseed"
)

// repoState is what the node remembers of one repository besides gossip:
// persisted as JSON in the store.
type repoState struct {
	Path      string      `json:"path,omitempty"`      // working repository shared from here, watched
	Seed      string      `json:"seed,omitempty"`      // seedDefault, seedYes, seedNo or seedRequested
	Requester string      `json:"requester,omitempty"` // with seedRequested: the node that asked (seedreq.go)
	Requested time.Time   `json:"requested,omitzero"`  // with seedRequested: when it was accepted
	Clones    []cloneInfo `json:"clones,omitempty"`
	Removed   bool        `json:"removed,omitempty"` // repo remove: not listed for itself, not replicated again
	LastSync  time.Time   `json:"last_sync,omitzero"`
	LastError string      `json:"last_error,omitempty"`
	// WorkError: the shared working repository (Path) could not be read
	// when last checked; LastError says why.
	WorkError bool `json:"work_error,omitempty"`
}

// cloneInfo is a working copy made from the replica (mecli repo clone or
// git clone mega://).
type cloneInfo struct {
	Path      string `json:"path"`
	Branch    string `json:"branch"`
	Namespace string `json:"namespace"` // node whose refs the clone follows
}

func (s *Service) loadStates() error {
	return s.store.EachRepoState(func(repo identity.RepoID, raw []byte) error {
		var st repoState
		if err := json.Unmarshal(raw, &st); err != nil {
			s.log.Warn("ignoring an unreadable repository state", "repo", repo, "err", err)
			return nil
		}
		s.states[repo] = &st
		return nil
	})
}

// state returns a copy of repo's state (zero if none).
func (s *Service) state(repo identity.RepoID) repoState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.states[repo]; st != nil {
		c := *st
		c.Clones = slices.Clone(st.Clones)
		return c
	}
	return repoState{}
}

// updateState changes repo's state and persists it.
func (s *Service) updateState(repo identity.RepoID, fn func(st *repoState)) error {
	s.mu.Lock()
	st := s.states[repo]
	if st == nil {
		st = &repoState{}
		s.states[repo] = st
	}
	fn(st)
	raw, err := json.Marshal(st)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.store.PutRepoState(repo, raw)
}

// Seeded reports whether the node replicates repo.
func (s *Service) Seeded(repo identity.RepoID) bool {
	st := s.state(repo)
	switch {
	case st.Path != "":
		return true
	case st.Seed == seedYes || st.Seed == seedRequested:
		return true
	case st.Seed == seedNo:
		return false
	}
	return s.cfg.Replicate != ReplicateNone
}

// Seed sets the node's choice for repo: replicate it (and sync now) or not.
func (s *Service) Seed(repo identity.RepoID, seed bool) error {
	if st := s.state(repo); !seed && st.Path != "" {
		return errorf(ErrConflict, "%s is shared from the working repository %s on this node: to stop sharing it, use mecli repo remove", repo, st.Path)
	}
	choice := seedNo
	if seed {
		choice = seedYes
	}
	if err := s.updateState(repo, func(st *repoState) { st.Seed, st.Removed = choice, st.Removed && !seed }); err != nil {
		return err
	}
	s.followChanged()
	if seed {
		s.forgiveHolders(repo)
		s.schedule(repo, identity.NodeID{})
	}
	return nil
}

// seedChosen marks repo as seeded: a node that clones or pushes a
// repository keeps replicating it.
func (s *Service) seedChosen(repo identity.RepoID) error {
	if s.state(repo).Seed == seedYes {
		return nil
	}
	if err := s.updateState(repo, func(st *repoState) { st.Seed, st.Removed = seedYes, false }); err != nil {
		return err
	}
	s.followChanged()
	return nil
}

// Followed lists the repositories the node follows: those it chose to
// replicate (shared from here, seeded, cloned or pushed to — whatever the
// policy for the rest) and those it is syncing now.
func (s *Service) Followed() []identity.RepoID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.followedLocked()
}

func (s *Service) followedLocked() []identity.RepoID {
	var out []identity.RepoID
	for repo, st := range s.states {
		if st.Path != "" || st.Seed == seedYes || st.Seed == seedRequested {
			out = append(out, repo)
		}
	}
	for repo := range s.syncing {
		if !slices.Contains(out, repo) {
			out = append(out, repo)
		}
	}
	for repo := range s.watching {
		if !slices.Contains(out, repo) {
			out = append(out, repo)
		}
	}
	slices.SortFunc(out, func(a, b identity.RepoID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Follow makes the node follow repo — hear of its holders and their refs —
// without replicating it, until the node stops.
func (s *Service) Follow(repo identity.RepoID) {
	s.mu.Lock()
	s.watching[repo] = true
	s.mu.Unlock()
	s.followChanged()
}

// followChanged tells Config.OnFollow the repositories now followed, if
// they changed since it was last told.
func (s *Service) followChanged() {
	if s.cfg.OnFollow == nil {
		return
	}
	s.followMu.Lock() // one at a time, so the last told is the newest
	defer s.followMu.Unlock()
	s.mu.Lock()
	repos := s.followedLocked()
	same := s.followSent && slices.Equal(repos, s.lastFollow)
	s.lastFollow, s.followSent = repos, true
	s.mu.Unlock()
	if !same {
		s.cfg.OnFollow(repos)
	}
}

// noteError records a repository's latest error; the same error again (a
// watched path that stays missing) is neither logged nor stored again.
func (s *Service) noteError(repo identity.RepoID, err error) {
	st := s.state(repo)
	if st.LastError == err.Error() {
		return
	}
	args := []any{"repo", repo, "err", err}
	if st.Path != "" {
		args = append(args, "path", st.Path)
	}
	s.log.Warn("a repository needs attention; repo list shows why until it is fixed", args...)
	_ = s.updateState(repo, func(st *repoState) { st.LastError = err.Error() })
}

// noteWorkError records whether the shared working repository of repo
// could be read (err nil: it could).
func (s *Service) noteWorkError(repo identity.RepoID, err error) {
	if err != nil {
		if !s.state(repo).WorkError {
			_ = s.updateState(repo, func(st *repoState) { st.WorkError = true })
		}
		s.noteError(repo, err)
		return
	}
	if s.state(repo).WorkError {
		_ = s.updateState(repo, func(st *repoState) { st.WorkError = false; st.LastError = "" })
	}
}

// clearError forgets repo's error once what failed works again.
func (s *Service) clearError(repo identity.RepoID) {
	if s.state(repo).LastError != "" {
		_ = s.updateState(repo, func(st *repoState) { st.LastError = "" })
	}
}

// Repos lists every repository the node has state, a document or an
// announcement for, sorted by id.
func (s *Service) Repos() []identity.RepoID {
	set := map[identity.RepoID]bool{}
	s.mu.Lock()
	for repo, st := range s.states {
		if !st.Removed {
			set[repo] = true
		}
	}
	s.mu.Unlock()
	_ = s.store.EachRepoAnnouncement(nil, func(a store.Announcement, ra *wire.RepoAnnouncement) error {
		if !ra.Withdrawn {
			set[ra.Repo] = true
		}
		return nil
	})
	out := make([]identity.RepoID, 0, len(set))
	for repo := range set {
		out = append(out, repo)
	}
	slices.SortFunc(out, func(a, b identity.RepoID) int { return strings.Compare(a.String(), b.String()) })
	return out
}
