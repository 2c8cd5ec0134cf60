package collab

import (
	"cmp"
	"context"
	"slices"
	"strings"

	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Issues returns the state of every issue of repo, newest first. Issues
// whose root change is not (yet) in the replica are left out.
func (s *Service) Issues(ctx context.Context, repo identity.RepoID) ([]*cob.Issue, error) {
	fs, err := s.foldAll(ctx, repo, cob.TypeIssue)
	if err != nil {
		return nil, err
	}
	out := make([]*cob.Issue, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.issue)
	}
	slices.SortFunc(out, func(a, b *cob.Issue) int {
		return cmp.Or(cmp.Compare(b.Created, a.Created), a.ID.Compare(b.ID))
	})
	return out, nil
}

// Issue returns the state of one issue.
func (s *Service) Issue(ctx context.Context, repo identity.RepoID, id cob.ObjectID) (*cob.Issue, error) {
	f, _, err := s.foldOne(ctx, repo, cob.TypeIssue, id)
	if err != nil {
		return nil, err
	}
	return f.issue, nil
}

// Resolve finds the issue of repo whose id starts with prefix (at least
// collab.MinPrefixLen hex digits).
func (s *Service) Resolve(ctx context.Context, repo identity.RepoID, prefix string) (cob.ObjectID, error) {
	return s.resolve(ctx, repo, cob.TypeIssue, prefix)
}

// Refresh is told that a fetch changed repo's replica: it tells OnChanged
// of every issue and patch whose heads differ from those seen last.
func (s *Service) Refresh(ctx context.Context, repo identity.RepoID) {
	bare, _, err := s.open(repo)
	if err != nil {
		return
	}
	refs, err := bare.RefsUnder(ctx, cob.RefPrefix) // every type at once
	if err != nil {
		s.log.Debug("listing objects after a fetch", "repo", repo.String(), "err", err)
		return
	}
	for _, typ := range []cob.ObjectType{cob.TypeIssue, cob.TypePatch} {
		objs := objectsOf(refs, typ)
		for _, id := range s.moved(repo, objs) {
			s.cfg.OnChanged(repo, typ, id)
		}
	}
}

// moved returns the objects whose tips differ from those seen last, and
// remembers the new ones.
func (s *Service) moved(repo identity.RepoID, objs map[cob.ObjectID]*objectRefs) []cob.ObjectID {
	var changed []cob.ObjectID
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.tips[repo]
	if seen == nil {
		seen = map[cob.ObjectID]string{}
		s.tips[repo] = seen
	}
	for id, o := range objs {
		key := strings.Join(o.tips, ",")
		if seen[id] != key {
			seen[id] = key
			changed = append(changed, id)
		}
	}
	return changed
}
