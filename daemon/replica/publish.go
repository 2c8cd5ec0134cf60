package replica

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Share registers the working repository at path: it signs the identity
// document (the first time), copies the refs into this node's namespace,
// signs and announces them, and watches path from then on. Sharing the
// same history again keeps the repository id and moves the watched path;
// a different name or description given then signs a new version of the
// identity document (updated), or a proposal when other delegates must
// sign it too (then said in the warning).
func (s *Service) Share(ctx context.Context, path, name, description string) (repo identity.RepoID, updated bool, err error) {
	path = filepath.Clean(path)
	if _, _, err := s.git.IsRepo(ctx, path); err != nil {
		return repo, false, errorf(ErrInvalid, "%w", err) // gitstore says what and where
	}
	branch, err := s.git.DefaultBranch(ctx, path)
	if err != nil {
		return repo, false, errorf(ErrInvalid, "finding the default branch of %s: %w", path, err)
	}
	work, err := s.git.ReadWork(ctx, path)
	if err != nil {
		return repo, false, errorf(ErrInvalid, "reading refs of %s: %w", path, err)
	}
	root, err := s.rootCommit(ctx, path, branch, work.Refs)
	if err != nil {
		return repo, false, err
	}
	if repo, err = identity.NewRepoID(root, s.id); err != nil {
		return repo, false, err
	}
	explicitName := name != ""
	if name == "" {
		name = filepath.Base(path)
	}
	doc, err := s.Doc(repo)
	kept := ""
	if err == nil && ((explicitName && name != doc.Name()) || (description != "" && description != doc.Description())) {
		if updated, kept, err = s.rename(repo, name, explicitName, description); err != nil {
			return repo, false, err
		}
	}
	if errors.Is(err, ErrNotFound) {
		doc, err = s.signDoc(repo, wire.RepoDocFields{
			Root: root, Name: name, Description: description, DefaultBranch: branch,
			Created: uint64(time.Now().UnixMilli()),
		})
	}
	if err != nil {
		return repo, false, err
	}
	// Publish first, then record the path: the watcher only looks at the
	// path once the refs it would compare with are there.
	warning, err := s.publishWork(ctx, repo, path, work)
	if err != nil {
		return repo, false, err
	}
	if warning == "" {
		warning = kept
	}
	if err := s.updateState(repo, func(st *repoState) {
		st.Path, st.Seed, st.Removed, st.WorkError = path, seedYes, false, false
		st.LastError = warning
	}); err != nil {
		return repo, false, err
	}
	s.followChanged()
	s.watchChangedNotify()
	s.log.Info("repository shared", "repo", repo, "path", path)
	return repo, updated, nil
}

// rename signs the identity version with a new name (if explicit) and
// description (if not empty), for Share; the publish after it announces
// it. With a threshold above one it is a proposal, and kept says so.
func (s *Service) rename(repo identity.RepoID, name string, explicitName bool, description string) (updated bool, kept string, err error) {
	s.publish.Lock()
	defer s.publish.Unlock()
	res, err := s.edit(repo, func(c *wire.DocChange) error {
		if explicitName {
			c.Name = name
		}
		if description != "" {
			c.Description = description
		}
		return nil
	})
	if err != nil {
		return false, "", err
	}
	if !res.Applied {
		kept = fmt.Sprintf("proposed version %d of the identity document: %d more delegates must make the same change", res.Doc.Version(), res.Missing)
	}
	return res.Applied, kept, nil
}

// rootCommit finds the root commit of the default branch (the rule of
// spec/repo.md) as raw bytes; refs are the working repository's.
func (s *Service) rootCommit(ctx context.Context, path, branch string, refs []gitstore.Ref) ([]byte, error) {
	i := slices.IndexFunc(refs, func(r gitstore.Ref) bool { return r.Name == "refs/heads/"+branch })
	if i < 0 {
		return nil, errorf(ErrInvalid, "%s has no commits on its default branch %q", path, branch)
	}
	root, err := s.git.RootCommit(ctx, path, refs[i].OID)
	if err != nil {
		return nil, errorf(ErrInvalid, "finding the root commit of %s: %w", path, err)
	}
	return hex.DecodeString(root)
}

// signDoc signs and stores repo's first identity document.
func (s *Service) signDoc(repo identity.RepoID, f wire.RepoDocFields) (*wire.RepoDoc, error) {
	doc, err := wire.SignRepoDoc(s.cfg.Key, f)
	if err != nil {
		return nil, errorf(ErrInvalid, "%w", err)
	}
	raw, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	return doc, s.store.PutRepoDoc(repo, raw)
}

// publishWork copies the working repository's refs into our namespace of
// the replica, signs them and announces them; work is the working
// repository as just read (ReadWork). Refs the signed
// refs cannot carry are left out, and the warning names them ("" if none);
// more refs than signed refs carry is ErrInvalid, and nothing is published.
func (s *Service) publishWork(ctx context.Context, repo identity.RepoID, path string, work gitstore.Work) (warning string, err error) {
	s.publish.Lock()
	defer s.publish.Unlock()
	skipped := unpublishable(work.Refs)
	if n := len(work.Refs) - len(skipped); n > wire.MaxRefs {
		return "", errorf(ErrInvalid, "%s has %d branches and tags; signed refs carry at most %d: nothing was published", path, n, wire.MaxRefs)
	}
	bare, err := s.initBare(ctx, repo)
	if err != nil {
		return "", err
	}
	release := s.readLock(repo) // objects come in: no repack meanwhile
	refs, err := bare.ImportWork(ctx, work, Namespace(s.id))
	release()
	s.repackSoon(repo)
	if err != nil {
		return "", err
	}
	if doc, err := s.Doc(repo); err == nil {
		s.setHEAD(ctx, bare, s.id, doc.DefaultBranch(), refs)
	}
	s.mu.Lock()
	s.workRefs[repo] = work.Refs
	s.mu.Unlock()
	if len(skipped) > 0 {
		warning = fmt.Sprintf("not published: %s (signed refs carry only UTF-8 ref names of at most %d bytes; rename them)",
			strings.Join(clipNames(skipped), ", "), wire.MaxRefNameLen)
	}
	return warning, s.signRefs(repo, refs, bare) // the namespace is what Import left
}

// unpublishable lists the refs that signed refs cannot carry, each with
// why (a name over MaxRefNameLen is shown clipped).
func unpublishable(refs []gitstore.Ref) []string {
	var out []string
	for _, r := range refs {
		if err := wire.CheckRefName(r.Name); err != nil {
			name := r.Name
			if len(name) > 80 {
				name = fmt.Sprintf("%s… (%d bytes)", name[:80], len(name))
			}
			out = append(out, fmt.Sprintf("%q", name))
		}
	}
	return out
}

// signRefs signs refs as this node's refs of repo, stores and announces
// them. exact, if not nil, is the replica whose namespace holds exactly
// refs now (just written under the publish lock): it is recorded as
// checked (markSigned) before the announcement makes peers fetch, so
// serving them lists no refs.
func (s *Service) signRefs(repo identity.RepoID, refs []gitstore.Ref, exact *gitstore.Bare) error {
	wrefs, err := toWireRefs(refs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	last := s.lastSeq[repo]
	s.mu.Unlock()
	if last == 0 {
		if _, seq, ok, err := s.store.SignedRefs(repo, s.id); err == nil && ok {
			last = seq
		}
	}
	seq := max(uint64(time.Now().UnixMilli()), last+1)
	sr, err := wire.SignRefs(s.cfg.Key, repo, seq, wrefs)
	if errors.Is(err, wire.ErrInvalid) || errors.Is(err, wire.ErrTooLarge) {
		return errorf(ErrInvalid, "cannot publish the refs of %s: %w", repo, err)
	}
	if err != nil {
		return err
	}
	raw, err := sr.Marshal()
	if err != nil {
		return err
	}
	if _, err := s.store.PutSignedRefs(repo, s.id, seq, raw); err != nil {
		return err
	}
	s.mu.Lock()
	s.lastSeq[repo] = seq
	s.mu.Unlock()
	if exact != nil {
		s.markSigned(exact, repo, s.id, seq)
	}
	err = s.announce(repo)
	s.cfg.OnPublished(repo) // merge detection (daemon/merge.go), after peers were told
	if err != nil {
		return err
	}
	s.emit(Event{Kind: Published, Repo: repo, Node: s.id})
	return nil
}

func toWireRefs(refs []gitstore.Ref) ([]wire.Ref, error) {
	out := make([]wire.Ref, 0, len(refs))
	for _, r := range refs {
		oid, err := hex.DecodeString(r.OID)
		if err != nil {
			return nil, fmt.Errorf("ref %s: bad object id %q", r.Name, r.OID)
		}
		out = append(out, wire.Ref{Name: r.Name, OID: oid})
	}
	return out, nil
}

func fromWireRefs(refs []wire.Ref) []gitstore.Ref {
	out := make([]gitstore.Ref, len(refs))
	for i, r := range refs {
		out[i] = gitstore.Ref{Name: r.Name, OID: hex.EncodeToString(r.OID)}
	}
	return out
}

// announce publishes that this node holds repo, with its own signed refs
// head if it has one.
func (s *Service) announce(repo identity.RepoID) error {
	doc, err := s.Doc(repo)
	if err != nil {
		return err
	}
	ann := &wire.RepoAnnouncement{Repo: repo, Doc: doc.Digest(), Name: doc.Name(), Description: doc.Description()}
	if _, seq, ok, err := s.store.SignedRefs(repo, PrimaryDelegate(doc)); err == nil && ok {
		ann.CanonicalSeq = seq // which of the primary delegate's refs this node holds
	}
	if raw, seq, ok, err := s.store.SignedRefs(repo, s.id); err == nil && ok {
		ann.RefsSeq = seq
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil {
			ann.RefsDigest = sr.Digest()
		}
	}
	return s.cfg.Announce(ann)
}

// announceHeld announces every repository the node holds (at start).
func (s *Service) announceHeld() {
	s.mu.Lock()
	var held []identity.RepoID
	for repo := range s.states {
		held = append(held, repo)
	}
	s.mu.Unlock()
	for _, repo := range held {
		if _, err := s.Doc(repo); err != nil {
			continue
		}
		if err := s.announce(repo); err != nil {
			s.log.Warn("announcing a held repository at start failed", "repo", repo, "err", err)
		}
	}
}

// checkWork publishes path's refs if they changed since last seen.
func (s *Service) checkWork(ctx context.Context, repo identity.RepoID, path string) {
	work, err := s.git.ReadWork(ctx, path)
	if err != nil {
		if ctx.Err() == nil {
			s.noteWorkError(repo, errors.New("the working repository "+unreadable(path, err)))
		}
		return
	}
	s.noteWorkError(repo, nil)
	s.mu.Lock()
	same := slices.Equal(work.Refs, s.workRefs[repo])
	s.mu.Unlock()
	if same {
		return
	}
	warning, err := s.publishWork(ctx, repo, path, work)
	if err != nil {
		s.noteError(repo, fmt.Errorf("publishing %s: %w", path, err))
		return
	}
	s.log.Info("published new commits of a shared working repository", "repo", repo, "path", path)
	if warning != "" {
		s.noteError(repo, fmt.Errorf("publishing %s: %s", path, warning))
		return
	}
	s.clearError(repo)
}

// PublishResult is what Publish signed.
type PublishResult struct {
	Updated bool           // new signed refs were made and announced
	Seq     uint64         // the node's signed refs seq (0: none)
	Refs    []gitstore.Ref // the signed refs
}

// Publish signs and announces the refs of this node's namespace of repo,
// after a push wrote them (git-remote-mega). Branches, tags and cob refs.
func (s *Service) Publish(ctx context.Context, repo identity.RepoID) (PublishResult, error) {
	var res PublishResult
	doc, err := s.Doc(repo)
	if err != nil {
		return res, err
	}
	if st := s.state(repo); st.Path != "" {
		return res, watchedConflict(repo, st.Path)
	}
	s.publish.Lock()
	defer s.publish.Unlock()
	bare, err := s.openBare(repo)
	if err != nil {
		return res, err
	}
	ns := Namespace(s.id)
	if res.Refs, err = s.pushedRefs(ctx, bare, ns); err != nil {
		return res, err
	}
	if err := s.seedChosen(repo); err != nil {
		return res, err
	}
	if raw, seq, ok, err := s.store.SignedRefs(repo, s.id); err != nil {
		return res, err
	} else if ok {
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil && slices.Equal(fromWireRefs(sr.Refs()), res.Refs) {
			res.Seq = seq
			return res, nil // already signed: nothing new to announce
		}
	} else if len(res.Refs) == 0 {
		return res, nil // nothing pushed, nothing signed before
	}
	if err := s.signRefs(repo, res.Refs, nil); err != nil {
		return res, err
	}
	s.mu.Lock()
	res.Seq = s.lastSeq[repo]
	s.mu.Unlock()
	res.Updated = true
	s.setHEAD(ctx, bare, s.id, doc.DefaultBranch(), res.Refs)
	s.log.Info("published pushed refs", "repo", repo, "refs", len(res.Refs), "seq", res.Seq)
	return res, nil
}

// pushedRefs are the branches and tags of namespace ns (git-remote-mega's
// receive-pack hides and refuses the rest) and the node's collaborative
// objects, each checked for signing.
func (s *Service) pushedRefs(ctx context.Context, bare *gitstore.Bare, ns string) ([]gitstore.Ref, error) {
	all, err := bare.Refs(ctx, ns)
	if err != nil {
		return nil, err
	}
	refs := []gitstore.Ref{}
	for _, r := range all {
		if !isBranchOrTag(r.Name) { // and cob refs: see cobs.go
			continue
		}
		if err := wire.CheckRefName(r.Name); err != nil {
			return nil, errorf(ErrInvalid, "cannot publish %q: %w; delete it (git push origin :%s) and push again", r.Name, err, r.Name)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// watchedConflict is the error for a push into the namespace of a
// repository the node publishes from a watched working repository: the
// watcher would overwrite what the push wrote.
func watchedConflict(repo identity.RepoID, path string) error {
	return errorf(ErrConflict,
		"%s is shared from the working repository %s on this node, which publishes its commits by itself: commit there instead of pushing",
		repo, path)
}

// setHEAD makes node's namespace's HEAD a symbolic ref to its branch
// refs/heads/<branch>, when refs (the namespace's refs) have that branch,
// so git upload-pack advertises it and git clone checks it out. It runs
// whenever a namespace's refs change (a fetch, a publish); git is asked
// only the first time in a run, then the HEAD found or set is remembered.
// Failures are only logged: HEAD is a convenience, the refs are what counts.
func (s *Service) setHEAD(ctx context.Context, bare *gitstore.Bare, node identity.NodeID, branch string, refs []gitstore.Ref) {
	ns := Namespace(node)
	if !slices.ContainsFunc(refs, func(r gitstore.Ref) bool { return r.Name == "refs/heads/"+branch }) {
		return
	}
	key := bare.Dir + "\x00" + ns
	s.mu.Lock()
	known := s.heads[key] == branch
	s.mu.Unlock()
	if known {
		return
	}
	if cur, err := bare.HEAD(ctx, ns); err != nil || cur != branch {
		if err := bare.SetHEAD(ctx, ns, branch); err != nil {
			s.log.Debug("setting a namespace's HEAD failed", "namespace", node, "branch", branch, "err", err)
			return
		}
	}
	s.mu.Lock()
	s.heads[key] = branch
	s.mu.Unlock()
}
