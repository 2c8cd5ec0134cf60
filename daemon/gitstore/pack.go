package gitstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// packHeaderLen is the size of a pack header: "PACK", version, object count.
const packHeaderLen = 12

// PackOptions are the settings of Bare.PackObjects. The zero value packs
// quietly.
type PackOptions struct {
	// Progress, if set, receives git's progress reports: the stage
	// ("Enumerating objects", "Counting objects", "Compressing objects"),
	// the count done and the total (0 when git does not know it yet).
	// It is called from another goroutine, never concurrently.
	Progress func(stage string, done, total int)
	// Full says the receiver has nothing (no haves): git may then use
	// reachability bitmaps and reuse whole packs, as for a git clone.
	// Without it bitmaps are off, so a thin update sends deltas against
	// what the receiver has rather than whole objects.
	Full bool
}

// PackObjects writes to w a thin pack of the objects that wants need and
// haves do not have (git pack-objects --stdout --thin --revs
// --delta-base-offset, bitmaps off): haves that are not present locally are
// ignored, and deltas may use objects reachable from the others as bases,
// which the receiver must have (Bare.IndexPack fixes the pack with them).
// It returns the number of objects in the pack. When the wants are all
// contained in the haves, nothing is written and it returns 0.
//
// If w fails, git is stopped and the error wraps w's. If ctx ends while a
// Write to w blocks, PackObjects returns within about a second and that
// Write is abandoned (it returns whenever w lets it).
func (b *Bare) PackObjects(ctx context.Context, wants, haves []string, w io.Writer, opt PackOptions) (int, error) {
	if err := checkOIDs(wants); err != nil {
		return 0, err
	}
	if err := checkOIDs(haves); err != nil {
		return 0, err
	}
	if len(wants) == 0 {
		return 0, nil
	}
	present, err := b.HasObjects(ctx, haves)
	if err != nil {
		return 0, err
	}
	var in strings.Builder
	for _, o := range wants {
		in.WriteString(o + "\n")
	}
	for _, o := range haves {
		if present[o] {
			in.WriteString("^" + o + "\n")
		}
	}
	args := []string{"-c", "pack.useBitmaps=false", "pack-objects", "--stdout", "--thin", "--revs", "--delta-base-offset"}
	if opt.Full && len(haves) == 0 {
		args = []string{"-c", "pack.useBitmaps=true", "-c", "pack.allowPackReuse=true", "pack-objects", "--stdout", "--revs", "--delta-base-offset"}
	}
	if opt.Progress != nil {
		args = append(args, "--progress")
	} else {
		args = append(args, "-q")
	}
	hw := &packWriter{w: w}
	_, err = b.r.run(ctx, call{args: args, gitDir: b.Dir, stdin: strings.NewReader(in.String()), stdout: hw, progress: opt.Progress})
	if hw.err != nil {
		return 0, fmt.Errorf("writing pack: %w", hw.err)
	}
	if err != nil {
		return 0, fmt.Errorf("packing objects: %w", err)
	}
	if len(hw.hdr) < packHeaderLen {
		return 0, fmt.Errorf("packing objects: git pack-objects wrote %d bytes, no pack header", len(hw.hdr))
	}
	return int(hw.count), nil
}

// packWriter forwards git's pack to w once the header shows it is not
// empty; an empty pack (0 objects) is swallowed.
type packWriter struct {
	w       io.Writer
	hdr     []byte
	count   uint32
	discard bool
	err     error // from w, or a bad header
}

func (p *packWriter) Write(b []byte) (int, error) {
	n := len(b)
	if len(p.hdr) < packHeaderLen {
		k := min(packHeaderLen-len(p.hdr), len(b))
		p.hdr = append(p.hdr, b[:k]...)
		b = b[k:]
		if len(p.hdr) < packHeaderLen {
			return n, nil
		}
		if string(p.hdr[:4]) != "PACK" {
			p.err = errors.New("git pack-objects wrote no pack header")
			return 0, p.err
		}
		p.count = binary.BigEndian.Uint32(p.hdr[8:])
		if p.count == 0 {
			p.discard = true
		} else if _, err := p.w.Write(p.hdr); err != nil {
			p.err = err
			return 0, err
		}
	}
	if p.discard || len(b) == 0 {
		return n, nil
	}
	if _, err := p.w.Write(b); err != nil {
		p.err = err
		return 0, err
	}
	return n, nil
}

// IndexOptions are the settings of Bare.IndexPack. The zero value accepts a
// pack of any size and reports no progress.
type IndexOptions struct {
	// MaxInputSize, if positive, makes index-pack refuse a pack larger
	// than this many bytes (--max-input-size): it stops reading there, and
	// nothing of the pack is kept. 0 means no limit.
	MaxInputSize int64
	// Progress, if set, receives index-pack's progress ("Receiving
	// objects", "Resolving deltas"), like PackOptions.Progress.
	Progress func(stage string, done, total int)
	// SelfContained says the pack must need nothing outside itself (a
	// first fetch, no haves): index-pack then also checks that every
	// object the pack refers to is in it (--check-self-contained-and-connected),
	// so the caller needs no connectivity walk afterwards. A pack that is
	// not fails with ErrMissingObjects.
	SelfContained bool
}

// IndexPack stores the pack read from rd: git index-pack --stdin --fix-thin
// --strict, so a thin pack is completed with the bases it refers to (they
// must be present), every object is checked, and every object a new object
// refers to must be in the pack or the repository. rd must end where the
// pack ends; trailing data is an error.
//
// Nothing is left behind unless the whole pack is good: index-pack writes
// into a private directory objects/incoming-* (git itself leaves
// objects/pack/tmp_pack_* files when a stream is cut), whose pack and index
// are moved into objects/pack only on success, index last.
//
// If ctx ends, IndexPack returns at once; a Read of rd in progress then
// finishes in the background and its data is dropped.
func (b *Bare) IndexPack(ctx context.Context, rd io.Reader, opt IndexOptions) error {
	objects := filepath.Join(b.Dir, "objects")
	tmp, err := os.MkdirTemp(objects, "incoming-")
	if err != nil {
		return fmt.Errorf("indexing pack: %w", err)
	}
	defer os.RemoveAll(tmp)
	packPath := filepath.Join(tmp, "incoming.pack")
	// index-pack's own temporary files (pack/tmp_idx_*) go into the
	// private directory too: it is index-pack's object directory, the
	// replica's objects an alternate for the bases and the checks.
	if err := os.Mkdir(filepath.Join(tmp, "pack"), 0o755); err != nil {
		return fmt.Errorf("indexing pack: %w", err)
	}
	env := []string{"GIT_OBJECT_DIRECTORY=" + tmp, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects}

	args := []string{"index-pack", "--stdin", "--fix-thin", "--strict"}
	if opt.SelfContained {
		args = []string{"index-pack", "--stdin", "--strict", "--check-self-contained-and-connected"}
	}
	if opt.MaxInputSize > 0 {
		args = append(args, "--max-input-size="+strconv.FormatInt(opt.MaxInputSize, 10))
	}
	if opt.Progress != nil {
		args = append(args, "-v")
	}
	args = append(args, packPath)
	out, err := b.r.run(ctx, call{args: args, gitDir: b.Dir, env: env, stdin: rd, progress: opt.Progress})
	if err != nil && opt.SelfContained && exitCode(err) == 1 {
		return fmt.Errorf("indexing pack: %w: the pack refers to objects it does not hold", ErrMissingObjects)
	}
	if err != nil {
		return fmt.Errorf("indexing pack: %w", err)
	}
	// index-pack --stdin prints "pack\t<hash>\n", then copies to stdout
	// whatever input it had buffered beyond the pack's end.
	line, rest, _ := strings.Cut(string(out), "\n")
	kind, hash, _ := strings.Cut(line, "\t")
	if kind != "pack" || CheckOID(hash) != nil {
		return fmt.Errorf("indexing pack: unexpected index-pack output %q", clip(line))
	}
	if rest != "" {
		return fmt.Errorf("indexing pack: %d bytes of trailing data after the pack", len(rest))
	}
	name := "pack-" + hash
	packDir := filepath.Join(objects, "pack")
	if err := os.MkdirAll(packDir, 0o755); err != nil {
		return fmt.Errorf("indexing pack: %w", err)
	}
	// The .idx makes the pack visible to git: move it last.
	for _, ext := range []string{".pack", ".rev", ".idx"} {
		src := filepath.Join(tmp, "incoming"+ext)
		dst := filepath.Join(packDir, name+ext)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := os.Stat(dst); err == nil {
			continue // the same pack (the name is its hash) is already here
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("indexing pack: installing %s: %w", name+ext, err)
		}
	}
	return nil
}

// hexOIDRE finds an object id in git's messages.
var hexOIDRE = regexp.MustCompile(`\b[0-9a-f]{40}(?:[0-9a-f]{24})?\b`)

// maxMissingReported is how many missing object ids an error lists.
const maxMissingReported = 5

// Connected checks that every object reachable from tips is present, taking
// objects reachable from the repository's existing refs as complete (git
// rev-list --objects --stdin --not --all, as git's own connectivity check
// after a fetch). A failure wraps ErrMissingObjects and names the missing
// object when git does.
func (b *Bare) Connected(ctx context.Context, tips []string) error {
	if err := checkOIDs(tips); err != nil {
		return err
	}
	if len(tips) == 0 {
		return nil
	}
	in := strings.Join(tips, "\n") + "\n"
	out, err := b.r.run(ctx, call{
		// --stdin comes before --not: the tips read from stdin are
		// positive, the refs after --not negative. --missing=print lists
		// missing trees and blobs as "?<oid>" instead of stopping at the
		// first; a missing commit still stops rev-list.
		args:   []string{"rev-list", "--objects", "--quiet", "--missing=print", "--stdin", "--not", "--all"},
		gitDir: b.Dir,
		stdin:  strings.NewReader(in),
	})
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) && ge.ExitCode > 0 {
			if oid := hexOIDRE.FindString(ge.Stderr); oid != "" {
				return fmt.Errorf("checking connectivity: %w: %s (%w)", ErrMissingObjects, oid, err)
			}
			return fmt.Errorf("checking connectivity: %w: %w", ErrMissingObjects, err)
		}
		return fmt.Errorf("checking connectivity: %w", err)
	}
	var missing []string
	for line := range strings.Lines(string(out)) {
		if oid, ok := strings.CutPrefix(strings.TrimSpace(line), "?"); ok {
			missing = append(missing, oid)
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > maxMissingReported {
			more = fmt.Sprintf(" and %d more", len(missing)-maxMissingReported)
			missing = missing[:maxMissingReported]
		}
		return fmt.Errorf("checking connectivity: %w: %s%s", ErrMissingObjects, strings.Join(missing, ", "), more)
	}
	return nil
}

// Packs lists the replica's pack files (objects/pack/pack-*.pack) that
// have their index, and the number of loose objects.
func (b *Bare) Packs() (packs []string, loose int) {
	idx, _ := filepath.Glob(filepath.Join(b.Dir, "objects", "pack", "pack-*.idx"))
	for _, i := range idx {
		packs = append(packs, strings.TrimSuffix(i, ".idx")+".pack")
	}
	dirs, _ := filepath.Glob(filepath.Join(b.Dir, "objects", "[0-9a-f][0-9a-f]"))
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		loose += len(entries)
	}
	return packs, loose
}

// Repack rolls the replica's packs (and loose objects) up into a geometric
// progression (git repack --geometric=2 -d), so the number of packs stays
// logarithmic in the number of fetches. It costs about the size of the
// small packs it rolls up, not of the whole history. (It writes no
// bitmap: a bitmap of the whole history takes seconds on a large one;
// WriteBitmap writes one of the largest pack, which a repack seldom
// rolls up.) Packs it rolled up are
// deleted: the caller makes sure nobody reads or adds packs meanwhile. A
// repack that fails or is stopped (ctx) leaves the packs as they were:
// its temporary files (objects/pack/.tmp-*, and pack-objects' own
// tmp_pack_* and tmp_idx_*) are removed, and so is a pack
// it installed only partly (a .pack without its .idx, which git only
// renames last).
func (b *Bare) Repack(ctx context.Context) error {
	dir := filepath.Join(b.Dir, "objects", "pack")
	before, _ := filepath.Glob(filepath.Join(dir, "pack-*.pack"))
	_, err := b.r.run(ctx, call{
		args:   []string{"repack", "--geometric=2", "-d", "-q"},
		gitDir: b.Dir,
	})
	if err != nil {
		tmp := append(packTemporaries(dir), globs(dir, ".tmp-*")...)
		after, _ := filepath.Glob(filepath.Join(dir, "pack-*.pack"))
		for _, p := range after {
			base := strings.TrimSuffix(p, ".pack")
			if _, err := os.Stat(base + ".idx"); err != nil && !slices.Contains(before, p) {
				tmp = append(tmp, p, base+".rev")
			}
		}
		for _, f := range tmp {
			os.Remove(f)
		}
		return fmt.Errorf("repacking: %w", err)
	}
	return nil
}

// packTemporaries lists the temporary pack and index files git writes in
// objects/pack dir before it renames them (pack-objects under repack,
// index-pack under fetch): what a git process cut short leaves there.
func packTemporaries(dir string) []string {
	return globs(dir, "tmp_pack_*", "tmp_idx_*")
}

func globs(dir string, patterns ...string) []string {
	var out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		out = append(out, m...)
	}
	return out
}
