package store

import (
	"errors"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Typed views of the announcement table. Announcements were verified when
// gossip accepted them; here they are only decoded, once, in one place.

// ErrStop, returned by a walk's callback, ends the walk without an error.
var ErrStop = errors.New("stop")

// decode returns the body of a stored announcement if it is a T.
func decode[T wire.Body](a Announcement) (T, bool) {
	var zero T
	env, err := wire.Unmarshal(a.Raw)
	if err != nil {
		return zero, false
	}
	body, err := env.DecodeBody()
	if err != nil {
		return zero, false
	}
	b, ok := body.(T)
	return b, ok
}

// Node returns the stored NodeAnnouncement of id.
func (s *Store) Node(id identity.NodeID) (*wire.NodeAnnouncement, Announcement, bool) {
	a, ok, err := s.Get(uint8(wire.TypeNodeAnnouncement), nil, id)
	if err != nil || !ok {
		return nil, a, false
	}
	na, ok := decode[*wire.NodeAnnouncement](a)
	return na, a, ok
}

// Alias is the alias id announced ("" when none is known).
func (s *Store) Alias(id identity.NodeID) string {
	if na, _, ok := s.Node(id); ok {
		return na.Alias
	}
	return ""
}

// EachNode calls fn for every stored node announcement; returning
// ErrStop from fn ends the walk without an error.
func (s *Store) EachNode(fn func(a Announcement, na *wire.NodeAnnouncement) error) error {
	return stoppable(s.Each(uint8(wire.TypeNodeAnnouncement), nil, func(a Announcement) error {
		if na, ok := decode[*wire.NodeAnnouncement](a); ok {
			return fn(a, na)
		}
		return nil
	}))
}

// EachRepoAnnouncement calls fn for every stored announcement of repo, or
// of every repository if repo is nil; ErrStop from fn ends the walk.
func (s *Store) EachRepoAnnouncement(repo *identity.RepoID, fn func(a Announcement, ra *wire.RepoAnnouncement) error) error {
	var subject []byte
	if repo != nil {
		subject = []byte(repo.String())
	}
	return stoppable(s.Each(uint8(wire.TypeRepoAnnouncement), subject, func(a Announcement) error {
		if ra, ok := decode[*wire.RepoAnnouncement](a); ok {
			return fn(a, ra)
		}
		return nil
	}))
}

// RepoNameHint is the name and description the newest announcement of
// repo that carries a name gives (unverified: for a repository whose
// identity document the node does not hold).
func (s *Store) RepoNameHint(repo identity.RepoID) (name, description string) {
	var newest uint64
	_ = s.EachRepoAnnouncement(&repo, func(a Announcement, ra *wire.RepoAnnouncement) error {
		if ra.Name != "" && !ra.Withdrawn && a.Timestamp > newest {
			newest, name, description = a.Timestamp, ra.Name, ra.Description
		}
		return nil
	})
	return name, description
}

// RepoName is the name of repo: its newest identity document version's
// when the node holds it, else the announced one (RepoNameHint), else "".
func (s *Store) RepoName(repo identity.RepoID) string {
	raw, ok, _ := s.RepoDoc(repo)
	if later, _ := s.DocVersions(repo); len(later) > 0 {
		raw = later[len(later)-1] // stored only once verified in its chain
	}
	if ok {
		if name, err := wire.StoredRepoDocName(raw); err == nil {
			return name
		}
	}
	name, _ := s.RepoNameHint(repo)
	return name
}

func stoppable(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
