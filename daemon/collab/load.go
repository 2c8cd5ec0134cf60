package collab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// objectRefs are the cob refs of one object in every namespace.
type objectRefs struct {
	tips []string          // the refs' commits, sorted, distinct
	ns   map[string]string // namespace → its ref's commit
}

// foldAll folds every object of type typ in repo. Objects that do not fold
// (their root change is not, or not yet, in the replica) are left out.
func (s *Service) foldAll(ctx context.Context, repo identity.RepoID, typ cob.ObjectType) ([]*folded, error) {
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, err
	}
	objs, err := typeRefs(ctx, bare, typ)
	if err != nil {
		return nil, err
	}
	rd := &reader{ctx: ctx, bare: bare}
	defer rd.close()
	auth := doc
	out := make([]*folded, 0, len(objs))
	for id, o := range objs {
		f, err := s.foldType(rd, repo, auth, typ, id, o.tips)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.log.Debug("left an object that does not fold out of the listing", "repo", repo, "type", string(typ), "object", id.Short(), "err", err)
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

// foldOne folds object id of type typ in repo and returns its refs.
func (s *Service) foldOne(ctx context.Context, repo identity.RepoID, typ cob.ObjectType, id cob.ObjectID) (*folded, *objectRefs, error) {
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, nil, err
	}
	objs, err := typeRefs(ctx, bare, typ)
	if err != nil {
		return nil, nil, err
	}
	o := objs[id]
	if o == nil {
		return nil, nil, errorf(ErrNotFound, "no %s %s in %s", typ, id.Short(), repo)
	}
	rd := &reader{ctx: ctx, bare: bare}
	defer rd.close()
	f, err := s.foldType(rd, repo, doc, typ, id, o.tips)
	return f, o, err
}

// resolve finds the object of type typ in repo whose id starts with prefix.
func (s *Service) resolve(ctx context.Context, repo identity.RepoID, typ cob.ObjectType, prefix string) (cob.ObjectID, error) {
	bare, _, err := s.open(repo)
	if err != nil {
		return cob.ObjectID{}, err
	}
	objs, err := typeRefs(ctx, bare, typ)
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
		return id, errorf(ErrNotFound, "no %s %q in %s", typ, prefix, repo)
	case err != nil:
		return id, errorf(ErrInvalid, "%s %q: %v", typ, prefix, err)
	}
	return id, nil
}

// typeRefs lists the objects of type typ in the replica with their refs,
// in one git for-each-ref. Refs whose names do not parse are ignored.
func typeRefs(ctx context.Context, bare *gitstore.Bare, typ cob.ObjectType) (map[cob.ObjectID]*objectRefs, error) {
	refs, err := bare.RefsUnder(ctx, cob.RefPrefix+string(typ)+"/")
	if err != nil {
		return nil, err
	}
	return objectsOf(refs, typ), nil
}

// objectsOf groups the refs of objects of type typ among refs by object.
func objectsOf(refs []gitstore.NamespacedRef, typ cob.ObjectType) map[cob.ObjectID]*objectRefs {
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
	return out
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

// foldType returns the fold of object (of type typ) from the commits tips,
// from the cache when the same heads were folded under the same identity
// document version before (it says who the delegates are).
func (s *Service) foldType(rd *reader, repo identity.RepoID, auth *wire.RepoDoc, typ cob.ObjectType, object cob.ObjectID, tips []string) (*folded, error) {
	dg := auth.Digest()
	key := string(typ) + " " + hex.EncodeToString(dg[:8]) + " " + foldKey(repo, object, tips)
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
	for _, err := range f.left {
		s.log.Warn("left a malformed change out of the fold", "repo", repo, string(typ), object.Short(), "err", err)
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
// parents, in order. What it leaves out is in f.left; the fold then rejects
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
