package replica

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Serving only what is signed (spec/repo.md §5.3): git refs on disk can
// change behind the daemon's back (a user, a bug, a disk), and a node that
// served them would pass on refs nobody signed. Before it serves a
// namespace the node checks that its refs equal the signed refs it holds.

// signedCheck is a cached result of checking one namespace: valid while
// the signed refs seq and the refs' fingerprint stay the same.
type signedCheck struct {
	seq         uint64
	fingerprint [32]byte
}

type nsKey struct {
	repo identity.RepoID
	node identity.NodeID
}

// Mismatch describes how a namespace's refs differ from its signed refs.
type Mismatch struct {
	Extra   []string // refs not in the signed refs
	Missing []string // signed refs absent
	Moved   []string // refs at another object than signed
}

func (m Mismatch) empty() bool { return len(m.Extra)+len(m.Missing)+len(m.Moved) == 0 }

func (m Mismatch) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"unsigned", m.Extra}, {"missing", m.Missing}, {"moved", m.Moved}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(clipNames(p.names), ", "))
		}
	}
	return strings.Join(parts, "; ")
}

func clipNames(names []string) []string {
	if len(names) > 5 {
		return append(slices.Clone(names[:5]), fmt.Sprintf("and %d more", len(names)-5))
	}
	return names
}

// compareRefs compares a namespace's refs with its signed refs.
func compareRefs(have, signed []gitstore.Ref) Mismatch {
	var m Mismatch
	want := map[string]string{}
	for _, r := range signed {
		want[r.Name] = r.OID
	}
	for _, r := range have {
		switch oid, ok := want[r.Name]; {
		case !ok:
			m.Extra = append(m.Extra, r.Name)
		case oid != r.OID:
			m.Moved = append(m.Moved, r.Name)
		}
		delete(want, r.Name)
	}
	for name := range want {
		m.Missing = append(m.Missing, name)
	}
	slices.Sort(m.Missing)
	return m
}

// refsFingerprint hashes what a ref change touches in a bare repository:
// packed-refs, and the names, sizes and times of the loose refs of ns. No
// git process runs.
func refsFingerprint(dir, ns string) [32]byte {
	h := sha256.New()
	stamp := func(path string, info fs.FileInfo) {
		fmt.Fprintf(h, "%s %d %d\n", path, info.Size(), info.ModTime().UnixNano())
	}
	if info, err := os.Stat(filepath.Join(dir, "packed-refs")); err == nil {
		stamp("packed-refs", info)
	}
	_ = filepath.WalkDir(filepath.Join(dir, "refs", "namespaces", ns), func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			if info, err := d.Info(); err == nil {
				stamp(path, info)
			}
		}
		return nil
	})
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// signedRefs returns node's signed refs of repo as stored (ok false: none).
func (s *Service) signedRefs(repo identity.RepoID, node identity.NodeID) (refs []gitstore.Ref, seq uint64, ok bool, err error) {
	raw, seq, ok, err := s.store.SignedRefs(repo, node)
	if err != nil || !ok {
		return nil, 0, ok, err
	}
	sr, err := wire.UnmarshalSignedRefs(raw)
	if err != nil {
		return nil, 0, false, err
	}
	return fromWireRefs(sr.Refs()), seq, true, nil
}

// checkSigned compares node's namespace of repo with node's signed refs,
// from the cache when neither changed since the last check that passed.
func (s *Service) checkSigned(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, node identity.NodeID) (Mismatch, error) {
	ns := Namespace(node)
	signed, seq, ok, err := s.signedRefs(repo, node)
	if err != nil {
		return Mismatch{}, err
	}
	fp := refsFingerprint(bare.Dir, ns)
	key := nsKey{repo, node}
	s.mu.Lock()
	c, cached := s.checked[key]
	s.mu.Unlock()
	if cached && c.seq == seq && c.fingerprint == fp {
		return Mismatch{}, nil
	}
	have, err := bare.Refs(ctx, ns)
	if err != nil {
		return Mismatch{}, err
	}
	if !ok {
		signed = nil
	}
	m := compareRefs(have, signed)
	s.mu.Lock()
	if m.empty() {
		s.checked[key] = signedCheck{seq, fp}
	} else {
		delete(s.checked, key)
	}
	s.mu.Unlock()
	return m, nil
}

// markSigned records that node's namespace of repo was just written to
// equal its signed refs of seq (a fetch's transaction, a publication), so
// the next serve need not list the refs again to check them.
func (s *Service) markSigned(bare *gitstore.Bare, repo identity.RepoID, node identity.NodeID, seq uint64) {
	fp := refsFingerprint(bare.Dir, Namespace(node))
	s.mu.Lock()
	s.checked[nsKey{repo, node}] = signedCheck{seq, fp}
	s.mu.Unlock()
}

// ensureSigned checks node's namespace of repo before it is served. On a
// mismatch it records the error, repairs what it can (repair) and returns
// an ErrTampered error: this request is refused either way.
func (s *Service) ensureSigned(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, node identity.NodeID) error {
	s.publish.Lock()
	m, err := s.checkSigned(ctx, bare, repo, node)
	s.publish.Unlock()
	if err != nil || m.empty() {
		return err
	}
	how := s.repair(ctx, bare, repo, node)
	err = errorf(ErrTampered, "the refs of %s in this node's replica of %s differed from its signed refs (%s), so they were not served; %s",
		node.Short(), repo, m, how)
	if node != s.id { // ours may be a push not yet published: no error to keep
		s.noteError(repo, err)
	}
	return err
}

// repair resets node's namespace of repo to its signed refs if their
// objects are present, else schedules a sync. This node's own namespace is
// not reset (a push may be on its way to being signed). It says what it did.
func (s *Service) repair(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, node identity.NodeID) string {
	if node == s.id {
		return "this node's own namespace is left as it is: push again or run repo publish"
	}
	s.publish.Lock()
	defer s.publish.Unlock()
	signed, _, _, err := s.signedRefs(repo, node)
	if err == nil {
		tips := make([]string, len(signed))
		for i, r := range signed {
			tips[i] = r.OID
		}
		if err = bare.Connected(ctx, dedupe(tips)); err == nil {
			err = s.resetNamespace(ctx, bare, repo, node, signed)
		}
	}
	if err != nil {
		s.log.Warn("resetting a namespace to its signed refs failed; syncing it instead", "repo", repo, "namespace", node, "err", err)
		s.schedule(repo, node)
		return "a sync was scheduled to repair it"
	}
	s.log.Warn("reset a namespace that differed from its signed refs", "repo", repo, "namespace", node)
	return "it was reset to the signed refs"
}

// resetNamespace sets node's namespace to exactly signed.
func (s *Service) resetNamespace(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, node identity.NodeID, signed []gitstore.Ref) error {
	ns := Namespace(node)
	current, err := bare.Refs(ctx, ns)
	if err != nil {
		return err
	}
	if err := bare.UpdateRefs(ctx, ns, current, signed); err != nil {
		return err
	}
	if doc, err := s.Doc(repo); err == nil {
		s.setHEAD(ctx, bare, node, doc.DefaultBranch(), signed)
	}
	return nil
}

// VerifyReport is what Verify found in one replica.
type VerifyReport struct {
	Repo       identity.RepoID
	Fsck       error // git fsck's complaint, nil if none
	Namespaces []NamespaceCheck
}

// OK reports whether the replica passed every check.
func (r VerifyReport) OK() bool {
	if r.Fsck != nil {
		return false
	}
	for _, n := range r.Namespaces {
		if n.Err != nil {
			return false
		}
	}
	return true
}

// NamespaceCheck is one namespace of a replica compared with its signed
// refs.
type NamespaceCheck struct {
	Node identity.NodeID
	Seq  uint64 // the signed refs' seq (0: none held)
	Err  error  // nil: equal; else what differed and what was done
}

// Verify checks the replica of repo, or of every repository held if repo
// is nil: git fsck, then every namespace (those with signed refs, and
// those on disk) against its signed refs, repairing a mismatch as a
// refused serve does. A repository with no replica is ErrNotFound.
func (s *Service) Verify(ctx context.Context, repo *identity.RepoID) ([]VerifyReport, error) {
	repos := s.heldOnDisk()
	if repo != nil {
		if _, err := s.Doc(*repo); err != nil {
			return nil, err
		}
		repos = []identity.RepoID{*repo}
	}
	out := []VerifyReport{}
	for _, r := range repos {
		if _, err := s.Doc(r); err != nil {
			continue
		}
		rep, err := s.verifyOne(ctx, r)
		if err != nil {
			return out, err
		}
		out = append(out, rep)
	}
	return out, nil
}

func (s *Service) verifyOne(ctx context.Context, repo identity.RepoID) (VerifyReport, error) {
	rep := VerifyReport{Repo: repo}
	bare, err := s.openBare(repo)
	if err != nil {
		return rep, errorf(ErrNotFound, "the replica of %s: %w", repo, err)
	}
	release := s.readLock(repo) // fsck reads every pack
	rep.Fsck = bare.Fsck(ctx)
	release()
	nodes := map[identity.NodeID]uint64{}
	_ = s.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, _ []byte) error {
		nodes[node] = seq
		return nil
	})
	onDisk, err := bare.Namespaces(ctx)
	if err != nil {
		return rep, err
	}
	for _, ns := range onDisk {
		if id, err := identity.ParseNodeID("did:key:" + ns); err == nil {
			if _, ok := nodes[id]; !ok {
				nodes[id] = 0
			}
		}
	}
	for node, seq := range nodes {
		err := s.ensureSigned(ctx, bare, repo, node)
		if err != nil && !errors.Is(err, ErrTampered) {
			return rep, err
		}
		rep.Namespaces = append(rep.Namespaces, NamespaceCheck{Node: node, Seq: seq, Err: err})
	}
	slices.SortFunc(rep.Namespaces, func(a, b NamespaceCheck) int { return strings.Compare(a.Node.String(), b.Node.String()) })
	return rep, nil
}
