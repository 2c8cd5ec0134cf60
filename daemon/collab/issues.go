package collab

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Issues returns the state of every issue of repo, newest first. Issues
// whose root change is not (yet) in the replica are left out.
func (s *Service) Issues(ctx context.Context, repo identity.RepoID) ([]*cob.Issue, error) {
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, err
	}
	objs, err := issueRefs(ctx, bare)
	if err != nil {
		return nil, err
	}
	rd := &reader{ctx: ctx, bare: bare}
	defer rd.close()
	auth := cob.Delegates(doc.Delegates())
	out := make([]*cob.Issue, 0, len(objs))
	for id, o := range objs {
		f, err := s.fold(rd, repo, auth, id, o.tips)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.log.Debug("leaving an issue out", "repo", repo.String(), "issue", id.Short(), "err", err)
			continue
		}
		out = append(out, f.issue)
	}
	slices.SortFunc(out, func(a, b *cob.Issue) int {
		if c := cmp.Compare(b.Created, a.Created); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
	return out, nil
}

// Issue returns the state of one issue.
func (s *Service) Issue(ctx context.Context, repo identity.RepoID, id cob.ObjectID) (*cob.Issue, error) {
	f, _, err := s.issue(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	return f.issue, nil
}

// issue folds one issue and returns its refs.
func (s *Service) issue(ctx context.Context, repo identity.RepoID, id cob.ObjectID) (*folded, *objectRefs, error) {
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, nil, err
	}
	objs, err := issueRefs(ctx, bare)
	if err != nil {
		return nil, nil, err
	}
	o := objs[id]
	if o == nil {
		return nil, nil, errorf(ErrNotFound, "no issue %s in %s", id.Short(), repo)
	}
	rd := &reader{ctx: ctx, bare: bare}
	defer rd.close()
	f, err := s.fold(rd, repo, cob.Delegates(doc.Delegates()), id, o.tips)
	return f, o, err
}

// Resolve finds the issue of repo whose id starts with prefix (at least
// collab.MinPrefixLen hex digits).
func (s *Service) Resolve(ctx context.Context, repo identity.RepoID, prefix string) (cob.ObjectID, error) {
	bare, _, err := s.open(repo)
	if err != nil {
		return cob.ObjectID{}, err
	}
	objs, err := issueRefs(ctx, bare)
	if err != nil {
		return cob.ObjectID{}, err
	}
	ids := make([]cob.ChangeID, 0, len(objs))
	for id := range objs {
		ids = append(ids, id)
	}
	id, err := cob.ResolveChangeID(prefix, ids)
	switch {
	case errors.Is(err, cob.ErrNotFound):
		return id, errorf(ErrNotFound, "no issue %q in %s", prefix, repo)
	case err != nil:
		return id, errorf(ErrInvalid, "issue %q: %v", prefix, err)
	}
	return id, nil
}

// Refresh is told that a fetch changed repo's replica: it tells OnChanged
// of every issue and patch whose heads differ from those seen last.
func (s *Service) Refresh(ctx context.Context, repo identity.RepoID) {
	bare, _, err := s.open(repo)
	if err != nil {
		return
	}
	for _, typ := range []cob.ObjectType{cob.TypeIssue, cob.TypePatch} {
		objs, err := typeRefs(ctx, bare, typ)
		if err != nil {
			s.log.Debug("listing objects after a fetch", "repo", repo.String(), "type", string(typ), "err", err)
			return
		}
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
