package replica

import (
	"context"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Collaborative objects replicate with the repository (spec/collab.md §6):
// a node's cob refs, refs/cobs/<type>/<object-id>, are signed with its
// branches and tags, so every holder serves them and every receiver checks
// them against the author's signed refs. daemon/collab writes them and
// calls PublishOwn; an ActivityAnnouncement makes holders fetch at once.

// cobPrefix starts the refs of collaborative objects (collab.RefPrefix).
const cobPrefix = "refs/cobs/"

func isCobRef(name string) bool { return strings.HasPrefix(name, cobPrefix) }

// PublishOwn signs the refs of this node's namespace of repo as they are
// now — branches, tags and cob refs — and announces them, unless they equal
// what the node signed last. daemon/collab calls it after writing a change.
// Unlike Publish it also serves repositories shared from a working
// repository: their branches and tags are what the watcher imported last.
func (s *Service) PublishOwn(ctx context.Context, repo identity.RepoID) error {
	if _, err := s.Doc(repo); err != nil {
		return err
	}
	s.publish.Lock()
	defer s.publish.Unlock()
	bare, err := s.openBare(repo)
	if err != nil {
		return err
	}
	refs, err := s.pushedRefs(ctx, bare, Namespace(s.id))
	if err != nil {
		return err
	}
	if raw, _, ok, err := s.store.SignedRefs(repo, s.id); err != nil {
		return err
	} else if ok {
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil && slices.Equal(fromWireRefs(sr.Refs()), refs) {
			return nil
		}
	}
	if err := s.seedChosen(repo); err != nil {
		return err
	}
	return s.signRefs(repo, refs, nil)
}

// HandleActivity reacts to an ActivityAnnouncement of another node: new
// collaboration heads of a repository this node replicates make it sync
// that repository now, from the announcer first.
func (s *Service) HandleActivity(origin identity.NodeID, a *wire.ActivityAnnouncement) {
	if origin == s.id || !s.Seeded(a.Repo) {
		return
	}
	if _, hasDoc, _ := s.store.RepoDoc(a.Repo); !hasDoc {
		return // the RepoAnnouncement brings the first fetch
	}
	s.schedule(a.Repo, origin)
}
