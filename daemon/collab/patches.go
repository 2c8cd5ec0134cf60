package collab

import (
	"cmp"
	"context"
	"slices"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
)

// PatchBranch is the branch, inside the revision author's namespace, that
// holds the head of the author's latest revision of a patch
// (spec/collab.md §8): signed refs cover it, so replicating the namespace
// replicates the code.
func PatchBranch(id cob.ObjectID) string { return gitstore.PatchBranches + id.String() }

// Patches returns the state of every patch of repo, newest first.
func (s *Service) Patches(ctx context.Context, repo identity.RepoID) ([]*cob.Patch, error) {
	fs, err := s.foldAll(ctx, repo, cob.TypePatch)
	if err != nil {
		return nil, err
	}
	out := make([]*cob.Patch, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.patch)
	}
	slices.SortFunc(out, func(a, b *cob.Patch) int {
		return cmp.Or(cmp.Compare(b.Created, a.Created), a.ID.Compare(b.ID))
	})
	return out, nil
}

// Patch returns the state of one patch.
func (s *Service) Patch(ctx context.Context, repo identity.RepoID, id cob.ObjectID) (*cob.Patch, error) {
	f, _, err := s.foldOne(ctx, repo, cob.TypePatch, id)
	if err != nil {
		return nil, err
	}
	return f.patch, nil
}

// ResolvePatch finds the patch of repo whose id starts with prefix.
func (s *Service) ResolvePatch(ctx context.Context, repo identity.RepoID, prefix string) (cob.ObjectID, error) {
	return s.resolve(ctx, repo, cob.TypePatch, prefix)
}

// OpenPatch opens a patch whose first revision is base..head; head must
// be a commit the replica holds (a push brought it). The patch branch of
// this node's namespace is set to head before the namespace is signed.
func (s *Service) OpenPatch(ctx context.Context, repo identity.RepoID, open *cob.OpenPatch) (*cob.Patch, error) {
	s.write.Lock()
	defer s.write.Unlock()
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, err
	}
	if err := s.haveCommits(ctx, bare, open.Base, open.Head); err != nil {
		return nil, err
	}
	ch, err := cob.NewChange(s.cfg.Key, cob.TypePatch, cob.ObjectID{}, nil, []cob.Action{open}, s.cfg.Now())
	if err != nil {
		return nil, errorf(ErrInvalid, "%v", err)
	}
	p, report, err := cob.FoldPatch(ch.ID(), []*cob.Change{ch}, doc)
	if err == nil {
		err = refusal(ch, report)
	}
	if err != nil {
		return nil, err
	}
	if err := s.moveBranch(ctx, bare, ch.ID(), open.Head); err != nil {
		return nil, err
	}
	if err := s.store(ctx, repo, bare, ch, nil, ""); err != nil {
		return nil, err
	}
	return p, nil
}

// ActPatch adds a change with the given actions to patch id of repo, as
// Act does for issues. A revise moves this node's patch branch to the new
// head (which the replica must hold).
func (s *Service) ActPatch(ctx context.Context, repo identity.RepoID, id cob.ObjectID, actions ...cob.Action) (*cob.Patch, cob.ChangeID, error) {
	s.write.Lock()
	defer s.write.Unlock()
	f, refs, err := s.foldOne(ctx, repo, cob.TypePatch, id)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	ch, parents, err := s.newChange(f, f.patch.Heads, cob.TypePatch, id, actions)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	p, report, err := cob.FoldPatch(id, append(slices.Clip(f.changes), ch), doc)
	if err == nil {
		err = refusal(ch, report)
	}
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	for _, a := range actions {
		if r, ok := a.(*cob.Revise); ok {
			if err := s.haveCommits(ctx, bare, r.Base, r.Head); err != nil {
				return nil, cob.ChangeID{}, err
			}
			if err := s.moveBranch(ctx, bare, id, r.Head); err != nil {
				return nil, cob.ChangeID{}, err
			}
		}
	}
	if err := s.store(ctx, repo, bare, ch, parents, refs.ns[s.self]); err != nil {
		return nil, cob.ChangeID{}, err
	}
	return p, ch.ID(), nil
}

// newChange builds a change on heads and returns it with its parents'
// commits.
func (s *Service) newChange(f *folded, heads []cob.ChangeID, typ cob.ObjectType, id cob.ObjectID, actions []cob.Action) (*cob.Change, []string, error) {
	byID := map[cob.ChangeID]*cob.Change{}
	for _, c := range f.changes {
		byID[c.ID()] = c
	}
	parents := make([]*cob.Change, 0, len(heads))
	for _, h := range heads {
		parents = append(parents, byID[h])
	}
	ch, err := cob.NewChange(s.cfg.Key, typ, id, parents, actions, s.cfg.Now())
	if err != nil {
		return nil, nil, errorf(ErrInvalid, "%v", err)
	}
	commits := make([]string, 0, len(parents))
	for _, p := range ch.Parents() {
		commits = append(commits, f.commits[p])
	}
	return ch, commits, nil
}

// haveCommits checks that the replica holds the commits.
func (s *Service) haveCommits(ctx context.Context, bare *gitstore.Bare, oids ...string) error {
	for _, oid := range oids {
		if err := gitstore.CheckOID(oid); err != nil {
			return errorf(ErrInvalid, "%q is not a commit id: %v", oid, err)
		}
	}
	have, err := bare.HasObjects(ctx, oids)
	if err != nil {
		return err
	}
	for _, oid := range oids {
		if !have[oid] {
			return errorf(ErrNotFound, "the replica has no commit %s (push it first)", oid)
		}
	}
	return nil
}

// moveBranch points this node's patch branch of patch id at head.
func (s *Service) moveBranch(ctx context.Context, bare *gitstore.Bare, id cob.ObjectID, head string) error {
	refs, err := bare.Refs(ctx, s.self)
	if err != nil {
		return err
	}
	name := PatchBranch(id)
	var old []gitstore.Ref
	if i := slices.IndexFunc(refs, func(r gitstore.Ref) bool { return r.Name == name }); i >= 0 {
		if refs[i].OID == head {
			return nil
		}
		old = refs[i : i+1]
	}
	return bare.UpdateRefs(ctx, s.self, old, []gitstore.Ref{{Name: name, OID: head}})
}

// Checkout points branch of the working copy workdir at the latest
// revision of patch id, fetching it from the replica (from the patch
// branch of the revision author's namespace).
func (s *Service) Checkout(ctx context.Context, repo identity.RepoID, id cob.ObjectID, workdir, branch string) (cob.Revision, error) {
	p, err := s.Patch(ctx, repo, id)
	if err != nil {
		return cob.Revision{}, err
	}
	bare, _, err := s.open(repo)
	if err != nil {
		return cob.Revision{}, err
	}
	rev := p.Latest()
	if err := bare.CheckoutCommit(ctx, namespace(rev.Author), PatchBranch(id), rev.Head, workdir, branch); err != nil {
		return cob.Revision{}, errorf(ErrInvalid, "%v", err)
	}
	return rev, nil
}
