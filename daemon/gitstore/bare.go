package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// bareConfig is the configuration InitBare gives every replica.
var bareConfig = [][2]string{
	{"core.logAllRefUpdates", "false"},
	// The daemon decides when to gc; no automatic gc or maintenance.
	{"gc.auto", "0"},
	{"maintenance.auto", "false"},
	// With bitmaps, a thin pack carries whole blobs instead of deltas
	// against what the receiver has (STACK.md: 28 KB instead of ~300 B).
	{"pack.useBitmaps", "false"},
	// Bare repositories write bitmaps on repack by default, of the whole
	// pack it writes; WriteBitmap writes the replica's instead.
	{"repack.writeBitmaps", "false"},
	{"transfer.fsckObjects", "true"},
	{"receive.fsckObjects", "true"},
	{"uploadpack.allowAnySHA1InWant", "false"},
}

// Bare is one bare replica. Every node's refs live in their own namespace,
// refs/namespaces/<ns>/refs/…; the methods take <ns> and names within it.
// A Bare is safe for concurrent use (git serialises ref updates itself).
type Bare struct {
	// Dir is the repository's absolute path.
	Dir string
	r   *Runner
}

// InitBare creates a bare repository at dir, or opens the one there, and
// sets the replica configuration (bareConfig). An existing directory must be
// empty or a bare repository. The repository uses git's default object
// format.
func (r *Runner) InitBare(ctx context.Context, dir string) (*Bare, error) {
	abs, err := absPath(dir)
	if err != nil {
		return nil, err
	}
	b := &Bare{Dir: abs, r: r}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0:
		if _, err := r.run(ctx, call{args: []string{
			"-c", "init.defaultBranch=main", "init", "--bare", "--quiet", "--template=", "--end-of-options", abs,
		}}); err != nil {
			return nil, fmt.Errorf("creating bare repository %s: %w", abs, err)
		}
		// A first fetch waits for this: one git process, not one per key.
		if err := appendConfig(filepath.Join(abs, "config")); err != nil {
			return nil, err
		}
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("creating bare repository: %w", err)
	}
	if err := r.checkBare(ctx, abs); err != nil {
		return nil, fmt.Errorf("opening bare repository: %w", err)
	}
	if err := b.configure(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// appendConfig adds bareConfig to the config file of a repository git
// has just created (it holds none of those keys yet).
func appendConfig(path string) error {
	var sb strings.Builder
	for _, kv := range bareConfig {
		section, key, _ := strings.Cut(kv[0], ".")
		fmt.Fprintf(&sb, "[%s]\n\t%s = %s\n", section, key, kv[1])
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString(sb.String())
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// configure sets what bareConfig says, skipping values already set (one
// process when nothing changes).
func (b *Bare) configure(ctx context.Context) error {
	out, err := b.r.run(ctx, call{args: []string{"config", "--local", "--list"}, gitDir: b.Dir})
	if err != nil {
		return fmt.Errorf("configuring %s: %w", b.Dir, err)
	}
	have := map[string]string{}
	for line := range strings.Lines(string(out)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		have[k] = v
	}
	for _, kv := range bareConfig {
		if v, ok := have[strings.ToLower(kv[0])]; ok && v == kv[1] {
			continue
		}
		if _, err := b.r.run(ctx, call{args: []string{"config", "--local", kv[0], kv[1]}, gitDir: b.Dir}); err != nil {
			return fmt.Errorf("configuring %s: %w", b.Dir, err)
		}
	}
	return nil
}

// OpenBare returns the bare repository at dir, checking that it is one.
// It runs git once, bounded by the Runner's timeout.
func (r *Runner) OpenBare(dir string) (*Bare, error) {
	abs, err := absPath(dir)
	if err != nil {
		return nil, err
	}
	if err := r.checkBare(context.Background(), abs); err != nil {
		return nil, fmt.Errorf("opening bare repository: %w", err)
	}
	return &Bare{Dir: abs, r: r}, nil
}

func (r *Runner) checkBare(ctx context.Context, abs string) error {
	gitdir, bare, err := r.IsRepo(ctx, abs)
	if err != nil {
		return err
	}
	if !bare || gitdir != abs {
		return fmt.Errorf("%w: %s is not a bare repository", ErrNotRepo, abs)
	}
	return nil
}

// nsPrefix is the ref prefix of namespace ns.
func nsPrefix(ns string) string { return "refs/namespaces/" + ns + "/" }

// Refs returns the refs of namespace ns without the namespace prefix
// (Name "refs/heads/main"), sorted by name.
func (b *Bare) Refs(ctx context.Context, ns string) ([]Ref, error) {
	if err := CheckNamespace(ns); err != nil {
		return nil, err
	}
	refs, err := b.r.forEachRef(ctx, b.Dir, nsPrefix(ns), nsPrefix(ns))
	if err != nil {
		return nil, fmt.Errorf("listing refs of namespace %s: %w", ns, err)
	}
	return refs, nil
}

// Namespaces returns the namespaces that hold at least one ref, sorted.
// Names that CheckNamespace rejects (not written by this package) are left
// out.
func (b *Bare) Namespaces(ctx context.Context) ([]string, error) {
	out, err := b.r.run(ctx, call{args: []string{"for-each-ref", "--format=%(refname)", "refs/namespaces/"}, gitDir: b.Dir})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var nss []string
	for line := range strings.Lines(string(out)) {
		rest := strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "refs/namespaces/")
		ns, _, ok := strings.Cut(rest, "/")
		if !ok || CheckNamespace(ns) != nil {
			continue
		}
		if len(nss) == 0 || nss[len(nss)-1] != ns {
			nss = append(nss, ns)
		}
	}
	slices.Sort(nss)
	return slices.Compact(nss), nil
}

// PatchBranches is the prefix of the branches that carry patches' code.
const PatchBranches = "refs/heads/patches/"

// Import copies the branches and tags of the working repository workdir
// into namespace ns, with their objects, so that the namespace mirrors
// workdir: refs deleted there disappear here. Refs whose names
// wire.CheckRefName rejects cannot be signed and are left out (removed if
// an earlier import brought them). Other refs of ns (collaborative
// objects, and the node's patch branches under PatchBranches, which the
// node writes, spec/collab.md §8) stay; workdir's own branches under
// patches/ are not taken. Returns the namespace's refs afterwards.
//
// The objects travel as git fetch would move them, without its protocol:
// git pack-objects in workdir, thin against what ns held, piped into
// IndexPack (--strict: every object and its links are checked on the way
// in, so a repository holding objects git fsck rejects cannot be
// imported), then one ref transaction of what changed. If that fails
// (workdir lost an object ns pointed to, say), a forced, pruning git fetch
// does it instead.
func (b *Bare) Import(ctx context.Context, workdir, ns string) ([]Ref, error) {
	if err := CheckNamespace(ns); err != nil {
		return nil, err
	}
	w, err := b.r.ReadWork(ctx, workdir)
	if err != nil {
		return nil, err
	}
	return b.ImportWork(ctx, w, ns)
}

// ImportWork is Import of the working repository w as just read
// (Runner.ReadWork): its refs are not listed again.
func (b *Bare) ImportWork(ctx context.Context, w Work, ns string) ([]Ref, error) {
	if err := CheckNamespace(ns); err != nil {
		return nil, err
	}
	current, err := b.Refs(ctx, ns)
	if err != nil {
		return nil, err
	}
	refs, err := b.importDirect(ctx, w, ns, current)
	if err != nil {
		refs, err = b.importByFetch(ctx, w.GitDir, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("importing %s into namespace %s: %w", w.GitDir, ns, err)
	}
	return refs, nil
}

// mirrored reports whether Import mirrors the ref name: branches and tags,
// but not the node's patch branches.
func mirrored(name string) bool {
	return (strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")) && !strings.HasPrefix(name, PatchBranches)
}

// importDirect is Import by pack-objects and index-pack (see Import);
// current are ns's refs before.
func (b *Bare) importDirect(ctx context.Context, w Work, ns string, current []Ref) ([]Ref, error) {
	var good, kept, gone, bad []Ref
	for _, r := range w.Refs {
		if mirrored(r.Name) && checkRefName(r.Name) == nil && CheckOID(r.OID) == nil {
			good = append(good, r)
		}
	}
	for _, r := range current {
		switch {
		case !mirrored(r.Name):
			kept = append(kept, r)
		case checkRefName(r.Name) != nil || CheckOID(r.OID) != nil:
			bad = append(bad, r)
		default:
			gone = append(gone, r) // the mirrored refs before
		}
	}
	if err := b.copyObjects(ctx, w.GitDir, refOIDList(good), refOIDList(current)); err != nil {
		return nil, err
	}
	was, is := ChangedRefs(gone, good)
	if err := b.UpdateRefs(ctx, ns, was, is); err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		if err := b.deleteRefs(ctx, ns, bad); err != nil {
			return nil, err
		}
	}
	out := append(kept, good...)
	slices.SortFunc(out, func(a, b Ref) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []Ref{}
	}
	return out, nil
}

// copyObjects packs in the repository at src what wants need beyond haves
// and indexes it here; nothing when that is nothing.
func (b *Bare) copyObjects(ctx context.Context, src string, wants, haves []string) error {
	if len(wants) == 0 {
		return nil
	}
	pr, pw := io.Pipe()
	w := &lazyIndex{pw: pw, start: func() chan error {
		done := make(chan error, 1)
		go func() {
			err := b.IndexPack(ctx, pr, IndexOptions{})
			pr.CloseWithError(fmt.Errorf("index-pack stopped: %v", err))
			done <- err
		}()
		return done
	}}
	from := &Bare{Dir: src, r: b.r}
	_, err := from.PackObjects(ctx, dedupeOIDs(wants), dedupeOIDs(haves), w, PackOptions{})
	pw.CloseWithError(err)
	if w.done != nil {
		if ierr := <-w.done; err == nil {
			err = ierr
		}
	}
	return err
}

// lazyIndex starts index-pack at the first byte of the pack (an empty one
// is never written: PackObjects swallows it) and feeds it.
type lazyIndex struct {
	start func() chan error
	done  chan error
	pw    *io.PipeWriter
}

func (l *lazyIndex) Write(p []byte) (int, error) {
	if l.done == nil {
		l.done = l.start()
	}
	return l.pw.Write(p)
}

func refOIDList(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.OID
	}
	return out
}

func dedupeOIDs(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// ChangedRefs narrows a move of refs from current to next to the refs that
// change: their old values (moved or deleted) and new ones (moved or
// created), as UpdateRefs takes them. Unchanged refs stay out of the
// transaction: git would lock each, and a real history has hundreds of
// unchanged tags.
func ChangedRefs(current, next []Ref) (old, nw []Ref) {
	was := make(map[string]string, len(current))
	for _, r := range current {
		was[r.Name] = r.OID
	}
	is := make(map[string]string, len(next))
	for _, r := range next {
		is[r.Name] = r.OID
		if oid, ok := was[r.Name]; !ok || oid != r.OID {
			nw = append(nw, r)
		}
	}
	for _, r := range current {
		if oid, ok := is[r.Name]; !ok || oid != r.OID {
			old = append(old, r)
		}
	}
	return old, nw
}

// importByFetch is Import by a forced, pruning git fetch from src
// (transfer.fsckObjects checks the objects).
// removeFetchLeftovers removes the temporary pack and index files a git
// fetch cut short leaves in objects/pack (git removes them only when it
// fails cleanly). Only the fallback import runs git fetch into a replica,
// one at a time and never during a repack; IndexPack quarantines its
// files elsewhere, so nothing in use is removed.
func (b *Bare) removeFetchLeftovers() {
	for _, f := range packTemporaries(filepath.Join(b.Dir, "objects", "pack")) {
		os.Remove(f)
	}
}

func (b *Bare) importByFetch(ctx context.Context, src, ns string) ([]Ref, error) {
	p := nsPrefix(ns)
	if _, err := b.r.run(ctx, call{
		args: []string{
			"fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
			"--end-of-options", src,
			"+refs/heads/*:" + p + "refs/heads/*",
			"+refs/tags/*:" + p + "refs/tags/*",
			"^" + PatchBranches + "*",
		},
		gitDir: b.Dir,
	}); err != nil {
		b.removeFetchLeftovers()
		return nil, err
	}
	refs, err := b.Refs(ctx, ns)
	if err != nil {
		return nil, err
	}
	var bad, good []Ref
	for _, ref := range refs {
		if checkRefName(ref.Name) != nil || CheckOID(ref.OID) != nil {
			bad = append(bad, ref)
		} else {
			good = append(good, ref)
		}
	}
	if len(bad) > 0 {
		// The fetch brought them in; take them out again.
		if err := b.deleteRefs(ctx, ns, bad); err != nil {
			return nil, err
		}
	}
	if good == nil {
		good = []Ref{}
	}
	return good, nil
}

// deleteRefs deletes the given refs of namespace ns (if they still
// have the given values), without validating their names: it is how Import
// drops refs git accepts but the wire format does not.
func (b *Bare) deleteRefs(ctx context.Context, ns string, del []Ref) error {
	var in strings.Builder
	in.WriteString("start\x00")
	for _, ref := range del {
		fmt.Fprintf(&in, "delete %s%s\x00%s\x00", nsPrefix(ns), ref.Name, ref.OID)
	}
	in.WriteString("prepare\x00commit\x00")
	if _, err := b.r.run(ctx, call{args: []string{"update-ref", "--stdin", "-z"}, gitDir: b.Dir, stdin: strings.NewReader(in.String())}); err != nil {
		return fmt.Errorf("deleting invalid refs of namespace %s: %w", ns, err)
	}
	return nil
}

// HasObjects reports which of oids are present: those the object
// directory lists as loose objects or in a pack index are found without
// git, one git cat-file process asks about the others.
func (b *Bare) HasObjects(ctx context.Context, oids []string) (map[string]bool, error) {
	if err := checkOIDs(oids); err != nil {
		return nil, err
	}
	has := listedInStore(filepath.Join(b.Dir, "objects"), oids) // most, without git
	var in strings.Builder
	for _, o := range oids {
		if !has[o] {
			in.WriteString(o)
			in.WriteByte('\n')
		}
	}
	if in.Len() == 0 {
		return has, nil
	}
	out, err := b.r.run(ctx, call{args: []string{"cat-file", "--batch-check"}, gitDir: b.Dir, stdin: strings.NewReader(in.String())})
	if err != nil {
		return nil, fmt.Errorf("checking for objects: %w", err)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) >= 2 {
			has[f[0]] = f[1] != "missing"
		}
	}
	for _, o := range oids {
		if _, ok := has[o]; !ok {
			return nil, fmt.Errorf("checking for objects: git cat-file said nothing about %s", o)
		}
	}
	return has, nil
}

// UpdateRefs moves namespace ns from expected to next in one transaction
// (git update-ref --stdin -z, start/prepare/commit): a ref in next is
// created (if absent from expected) or updated (checked against its
// expected value), one only in expected is deleted (checked likewise), one
// equal in both is verified. If any ref is not as expected — a concurrent
// change — nothing changes. Refs of ns named in neither list are left
// alone; creating one that exists fails. New values must be objects present
// in the repository.
func (b *Bare) UpdateRefs(ctx context.Context, ns string, expected, next []Ref) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	old, err := refMap(expected)
	if err != nil {
		return fmt.Errorf("updating refs: expected: %w", err)
	}
	nw, err := refMap(next)
	if err != nil {
		return fmt.Errorf("updating refs: next: %w", err)
	}
	if len(old) == 0 && len(nw) == 0 {
		return nil
	}
	names := make([]string, 0, len(old)+len(nw))
	for n := range old {
		names = append(names, n)
	}
	for n := range nw {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)

	p := nsPrefix(ns)
	var in strings.Builder
	in.WriteString("start\x00")
	for _, n := range names {
		o, hadOld := old[n]
		v, hasNew := nw[n]
		switch {
		case hadOld && hasNew && o == v:
			fmt.Fprintf(&in, "verify %s%s\x00%s\x00", p, n, o)
		case hadOld && hasNew:
			fmt.Fprintf(&in, "update %s%s\x00%s\x00%s\x00", p, n, v, o)
		case hasNew:
			fmt.Fprintf(&in, "create %s%s\x00%s\x00", p, n, v)
		default:
			fmt.Fprintf(&in, "delete %s%s\x00%s\x00", p, n, o)
		}
	}
	in.WriteString("prepare\x00commit\x00")
	if _, err := b.r.run(ctx, call{args: []string{"update-ref", "--stdin", "-z"}, gitDir: b.Dir, stdin: strings.NewReader(in.String())}); err != nil {
		return fmt.Errorf("updating refs of namespace %s: %w", ns, err)
	}
	return nil
}

// refMap validates refs and indexes them by name; a name twice is an error.
func refMap(refs []Ref) (map[string]string, error) {
	m := make(map[string]string, len(refs))
	for _, ref := range refs {
		if err := checkRefName(ref.Name); err != nil {
			return nil, err
		}
		if err := CheckOID(ref.OID); err != nil {
			return nil, fmt.Errorf("ref %s: %w", ref.Name, err)
		}
		if _, dup := m[ref.Name]; dup {
			return nil, invalid("ref %s listed twice", ref.Name)
		}
		m[ref.Name] = ref.OID
	}
	return m, nil
}

// SetHEAD points namespace ns's HEAD (refs/namespaces/<ns>/HEAD) at its
// branch refs/heads/<branch>. git upload-pack run with GIT_NAMESPACE=<ns>
// advertises it as HEAD, so a plain git clone checks that branch out.
func (b *Bare) SetHEAD(ctx context.Context, ns, branch string) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	if err := checkBranch(branch); err != nil {
		return err
	}
	p := nsPrefix(ns)
	if _, err := b.r.run(ctx, call{args: []string{"symbolic-ref", p + "HEAD", p + "refs/heads/" + branch}, gitDir: b.Dir}); err != nil {
		return fmt.Errorf("setting HEAD of namespace %s: %w", ns, err)
	}
	return nil
}

// HEAD returns the branch namespace ns's HEAD points to (see SetHEAD);
// ErrDetached if it has none.
func (b *Bare) HEAD(ctx context.Context, ns string) (string, error) {
	if err := CheckNamespace(ns); err != nil {
		return "", err
	}
	full, err := b.r.run(ctx, call{args: []string{"symbolic-ref", "--quiet", nsPrefix(ns) + "HEAD"}, gitDir: b.Dir})
	if err != nil {
		if exitCode(err) == 1 {
			return "", fmt.Errorf("%w: namespace %s has no HEAD", ErrDetached, ns)
		}
		return "", err
	}
	branch, ok := strings.CutPrefix(strings.TrimSpace(string(full)), nsPrefix(ns)+"refs/heads/")
	if !ok || checkBranch(branch) != nil {
		return "", fmt.Errorf("%w: HEAD of namespace %s points to %q", ErrDetached, ns, strings.TrimSpace(string(full)))
	}
	return branch, nil
}

// GC packs the replica's objects into one pack and prunes unreachable
// objects older than two weeks (git gc). The daemon does not call it: a
// fetch takes every object already in a replica as complete (spec/repo.md
// §4, check 5), which pruning could make untrue; replicas are repacked
// geometrically instead (Repack), which keeps every object.
func (b *Bare) GC(ctx context.Context) error {
	if _, err := b.r.run(ctx, call{args: []string{"gc", "--quiet"}, gitDir: b.Dir}); err != nil {
		return fmt.Errorf("gc of %s: %w", b.Dir, err)
	}
	return nil
}
