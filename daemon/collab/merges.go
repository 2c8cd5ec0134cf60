package collab

import (
	"context"
	"slices"

	"github.com/megaengine/megaengine/daemon/gitstore"

	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
)

// DetectMerges records the merges this node's default branch of repo now
// holds (spec/collab.md §8.2): if this node is a delegate, for every open
// or draft patch whose revision head (the latest first) is an ancestor of
// (or equal to) the tip of this node's default branch, it writes a merge
// of that revision as that tip. It returns the patches it merged. This is
// the check the pure fold leaves to git: the node signs a merge only of a
// commit its own branch contains.
func (s *Service) DetectMerges(ctx context.Context, repo identity.RepoID) ([]cob.ObjectID, error) {
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(doc.Delegates(), s.cfg.Key.ID()) {
		return nil, nil
	}
	patches, err := s.Patches(ctx, repo)
	if err != nil {
		return nil, err
	}
	patches = slices.DeleteFunc(patches, func(p *cob.Patch) bool { return p.State != cob.PatchOpen && p.State != cob.PatchDraft })
	if len(patches) == 0 {
		return nil, nil // the usual publication: no branch to read
	}
	refs, err := bare.Refs(ctx, s.self)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(refs, func(r gitstore.Ref) bool { return r.Name == "refs/heads/"+doc.DefaultBranch() })
	if i < 0 {
		return nil, nil
	}
	tip := refs[i].OID
	var merged []cob.ObjectID
	for _, p := range patches {
		rev, ok := s.mergedRevision(ctx, bare, p, tip)
		if !ok || slices.ContainsFunc(p.Merges, func(m cob.PatchMerge) bool { return m.Author == s.cfg.Key.ID() && m.Revision == rev }) {
			continue // not in our branch, or merged by us already (waiting for other delegates)
		}
		if _, _, err := s.ActPatch(ctx, repo, p.ID, &cob.Merge{Revision: rev, Commit: tip}); err != nil {
			s.log.Warn("recording a merged patch failed", "repo", repo, "patch", p.ID.Short(), "err", err)
			continue
		}
		s.log.Info("patch merged", "repo", repo, "patch", p.ID.Short(), "commit", tip)
		merged = append(merged, p.ID)
	}
	return merged, nil
}

// mergedRevision is the latest revision of p whose head tip contains.
func (s *Service) mergedRevision(ctx context.Context, bare *gitstore.Bare, p *cob.Patch, tip string) (cob.ChangeID, bool) {
	for i := len(p.Revisions) - 1; i >= 0; i-- {
		r := p.Revisions[i]
		if len(r.Head) != len(tip) {
			continue
		}
		if ok, err := bare.IsAncestor(ctx, r.Head, tip); err == nil && ok {
			return r.ID, true
		}
	}
	return cob.ChangeID{}, false
}

// Ratification is a merge a delegate about to be removed made of a merged
// patch: the remaining delegates sign it again so the patch stays merged
// once the removed delegate's merges no longer count (spec/collab.md §8.3).
type Ratification struct {
	Patch cob.ObjectID
	Merge cob.PatchMerge
}

// MergesBy lists the merges by which node took part in merging patches of
// repo, to ratify after it is removed.
func (s *Service) MergesBy(ctx context.Context, repo identity.RepoID, node identity.NodeID) ([]Ratification, error) {
	patches, err := s.Patches(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []Ratification
	for _, p := range patches {
		if p.State != cob.PatchMerged {
			continue
		}
		for _, m := range p.Merges {
			if m.Author == node && m.Revision == p.Merge.Revision {
				out = append(out, Ratification{Patch: p.ID, Merge: m})
			}
		}
	}
	return out, nil
}

// Ratify signs, as this node, each merge of rs whose patch the fold no
// longer shows merged; patches merged still are left alone. It returns how
// many it signed.
func (s *Service) Ratify(ctx context.Context, repo identity.RepoID, rs []Ratification) int {
	patches, err := s.Patches(ctx, repo)
	if err != nil {
		s.log.Warn("ratifying a removed delegate's merges failed", "repo", repo, "err", err)
		return 0
	}
	n := 0
	for _, r := range rs {
		i := slices.IndexFunc(patches, func(p *cob.Patch) bool { return p.ID == r.Patch })
		if i < 0 || patches[i].State == cob.PatchMerged {
			continue
		}
		if _, _, err := s.ActPatch(ctx, repo, r.Patch, &cob.Merge{Revision: r.Merge.Revision, Commit: r.Merge.Commit}); err != nil {
			s.log.Warn("ratifying a removed delegate's merge failed", "repo", repo, "patch", r.Patch.Short(), "err", err)
			continue
		}
		n++
	}
	return n
}
