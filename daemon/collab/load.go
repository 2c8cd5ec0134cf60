package collab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
)

// objectRefs are the cob refs of one object in every namespace.
type objectRefs struct {
	tips []string          // the refs' commits, sorted, distinct
	ns   map[string]string // namespace → its ref's commit
}

// issueRefs lists the issues of the replica with their refs.
func issueRefs(ctx context.Context, bare *gitstore.Bare) (map[cob.ObjectID]*objectRefs, error) {
	return typeRefs(ctx, bare, cob.TypeIssue)
}

// typeRefs lists the objects of type typ in the replica with their refs,
// in one git for-each-ref. Refs whose names do not parse are ignored.
func typeRefs(ctx context.Context, bare *gitstore.Bare, typ cob.ObjectType) (map[cob.ObjectID]*objectRefs, error) {
	refs, err := bare.RefsUnder(ctx, cob.RefPrefix+string(typ)+"/")
	if err != nil {
		return nil, err
	}
	out := map[cob.ObjectID]*objectRefs{}
	for _, r := range refs {
		t, id, err := cob.ParseRefName(r.Name)
		if err != nil || t != typ {
			continue
		}
		o := out[id]
		if o == nil {
			o = &objectRefs{ns: map[string]string{}}
			out[id] = o
		}
		o.ns[r.Namespace] = r.OID
		o.tips = append(o.tips, r.OID)
	}
	for _, o := range out {
		slices.Sort(o.tips)
		o.tips = slices.Compact(o.tips)
	}
	return out, nil
}

// reader opens the replica's cat-file process on first use, so that a
// load served from the cache runs none.
type reader struct {
	ctx  context.Context
	bare *gitstore.Bare
	o    *gitstore.ObjectReader
}

func (r *reader) get() (*gitstore.ObjectReader, error) {
	if r.o == nil {
		o, err := r.bare.Objects(r.ctx)
		if err != nil {
			return nil, err
		}
		r.o = o
	}
	return r.o, nil
}

func (r *reader) close() {
	if r.o != nil {
		r.o.Close()
	}
}

func foldKey(repo identity.RepoID, object cob.ObjectID, tips []string) string {
	return repo.String() + " " + object.String() + " " + strings.Join(tips, ",")
}

// fold returns the fold of object from the commits tips, from the cache
// when the same heads were folded before.
func (s *Service) fold(rd *reader, repo identity.RepoID, auth cob.Authority, object cob.ObjectID, tips []string) (*folded, error) {
	return s.foldType(rd, repo, auth, cob.TypeIssue, object, tips)
}

// foldType is fold for an object of type typ (an issue or a patch).
func (s *Service) foldType(rd *reader, repo identity.RepoID, auth cob.Authority, typ cob.ObjectType, object cob.ObjectID, tips []string) (*folded, error) {
	key := string(typ) + " " + foldKey(repo, object, tips)
	s.mu.Lock()
	f := s.folds[key]
	s.mu.Unlock()
	if f != nil {
		return f, nil
	}
	f, err := s.load(rd, object, tips)
	if err != nil {
		return nil, err
	}
	if typ == cob.TypePatch {
		f.patch, f.report, err = cob.FoldPatch(object, f.changes, auth)
	} else {
		f.issue, f.report, err = cob.FoldIssue(object, f.changes, auth)
	}
	if err != nil {
		return nil, errorf(ErrNotFound, "%s %s: %v", typ, object.Short(), err)
	}
	s.remember(key, f)
	return f, nil
}

func (s *Service) remember(key string, f *folded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.folds) >= maxCachedFolds {
		clear(s.folds)
	}
	s.folds[key] = f
}

// load walks the commits reachable from tips and keeps the changes whose
// commit is well formed (spec/collab.md §6): a tree of one change.cbor
// blob that parses, and parents that are the commits of the change's
// parents, in order. What it leaves out is logged; the fold then rejects
// the changes that depend on it.
func (s *Service) load(rd *reader, object cob.ObjectID, tips []string) (*folded, error) {
	infos := map[string]*commitInfo{}
	stack := slices.Clone(tips)
	for len(stack) > 0 {
		oid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if infos[oid] != nil {
			continue
		}
		ci, err := s.commit(rd, oid)
		if err != nil {
			return nil, err
		}
		infos[oid] = ci
		if ci.change != nil {
			stack = append(stack, ci.parents...)
		}
	}
	f := &folded{commits: map[cob.ChangeID]string{}}
	for oid, ci := range infos {
		if ci.err != nil {
			f.left = append(f.left, fmt.Errorf("commit %s: %w", oid, ci.err))
			continue
		}
		if err := checkParents(ci, infos); err != nil {
			f.left = append(f.left, fmt.Errorf("commit %s: %w", oid, err))
			continue
		}
		f.changes = append(f.changes, ci.change)
		f.commits[ci.change.ID()] = oid
	}
	for _, err := range f.left {
		s.log.Warn("left a change out", "object", object.Short(), "err", err)
	}
	return f, nil
}

// checkParents reports whether a commit's parents are the commits of its
// change's parents, in the payload's order.
func checkParents(ci *commitInfo, infos map[string]*commitInfo) error {
	want := ci.change.Parents()
	if len(ci.parents) != len(want) {
		return fmt.Errorf("%d commit parents for %d change parents", len(ci.parents), len(want))
	}
	for i, p := range ci.parents {
		pi := infos[p]
		if pi == nil || pi.change == nil || pi.change.ID() != want[i] {
			return fmt.Errorf("parent %d is not the commit of change %s", i, want[i].Short())
		}
	}
	return nil
}

// commit reads commit oid, from the cache if it was read before. A commit
// that is not a valid change is remembered as such; a missing object is an
// error of the load (the replica is incomplete), not of the commit.
func (s *Service) commit(rd *reader, oid string) (*commitInfo, error) {
	s.mu.Lock()
	ci := s.commits[oid]
	s.mu.Unlock()
	if ci != nil {
		return ci, nil
	}
	o, err := rd.get()
	if err != nil {
		return nil, err
	}
	ci, err = readChange(o, oid)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.commits) >= maxCachedCommits {
		clear(s.commits)
	}
	s.commits[oid] = ci
	s.mu.Unlock()
	return ci, nil
}

func readChange(o *gitstore.ObjectReader, oid string) (*commitInfo, error) {
	c, err := o.ReadCommit(oid)
	if err != nil {
		return invalidCommit(&commitInfo{}, err)
	}
	ci := &commitInfo{parents: c.Parents}
	entries, err := o.ReadTree(c.Tree)
	if err != nil {
		return invalidCommit(ci, err)
	}
	if len(entries) != 1 || entries[0].Name != cob.BlobName || entries[0].Mode != "100644" {
		ci.err = fmt.Errorf("the tree is not exactly one %s blob", cob.BlobName)
		return ci, nil
	}
	typ, raw, err := o.Read(entries[0].OID, cob.MaxChangeSize)
	switch {
	case errors.Is(err, gitstore.ErrObjectTooLarge):
		ci.err = fmt.Errorf("%s: %w", cob.BlobName, cob.ErrTooLarge)
		return ci, nil
	case err != nil:
		return nil, err
	case typ != "blob":
		ci.err = fmt.Errorf("%s is a %s", cob.BlobName, typ)
		return ci, nil
	}
	if ci.change, err = cob.ParseChange(raw); err != nil {
		ci.err = err
	}
	return ci, nil
}

// invalidCommit sorts a read error: an object that is not what a change
// needs makes ci an invalid commit; anything else (a missing object, git
// failing) fails the load.
func invalidCommit(ci *commitInfo, err error) (*commitInfo, error) {
	if errors.Is(err, gitstore.ErrInvalid) || errors.Is(err, gitstore.ErrObjectTooLarge) {
		ci.err = err
		return ci, nil
	}
	return nil, err
}
