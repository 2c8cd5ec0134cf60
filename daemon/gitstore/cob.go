package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Collaborative objects (spec/collab.md §6): each change is a commit whose
// tree holds one blob, in its author's namespace under refs/cobs/. This
// file writes such commits and reads them back through one long-lived
// git cat-file --batch process per load.

// NamespacedRef is a ref of some namespace of a replica.
type NamespacedRef struct {
	Namespace string
	Name      string // within the namespace: "refs/cobs/issue/<id>"
	OID       string
}

// RefsUnder lists, across every namespace, the refs whose name within the
// namespace starts with prefix (e.g. "refs/cobs/issue/"), in one git
// for-each-ref. Namespaces that CheckNamespace rejects are left out.
func (b *Bare) RefsUnder(ctx context.Context, prefix string) ([]NamespacedRef, error) {
	out, err := b.r.run(ctx, call{args: []string{"for-each-ref", "--format=%(objectname) %(refname)", "refs/namespaces/"}, gitDir: b.Dir})
	if err != nil {
		return nil, fmt.Errorf("listing refs under %s: %w", prefix, err)
	}
	var refs []NamespacedRef
	for line := range strings.Lines(string(out)) {
		oid, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if !ok {
			return nil, fmt.Errorf("listing refs: git for-each-ref: unexpected line %q", clip(line))
		}
		ns, inner, ok := strings.Cut(strings.TrimPrefix(name, "refs/namespaces/"), "/")
		if !ok || CheckNamespace(ns) != nil || !strings.HasPrefix(inner, prefix) {
			continue
		}
		refs = append(refs, NamespacedRef{Namespace: ns, Name: inner, OID: oid})
	}
	return refs, nil
}

// ChangeCommit describes a change commit to write.
type ChangeCommit struct {
	BlobName string   // the one entry of the tree, e.g. "change.cbor"
	Blob     []byte   // its content
	Parents  []string // parent commits, in order
	Message  string
	Author   string // name for author and committer, e.g. the node's did:key
}

// WriteChange writes the blob, a tree holding only it and a commit with
// the given parents, then moves ref of namespace ns from old ("" if it does
// not exist yet) to the commit in one checked update. It returns the
// commit's id. If ref moved meanwhile, nothing changes but the new,
// unreferenced objects.
func (b *Bare) WriteChange(ctx context.Context, ns, ref, old string, c ChangeCommit) (string, error) {
	if err := CheckNamespace(ns); err != nil {
		return "", err
	}
	if err := checkRefName(ref); err != nil {
		return "", err
	}
	if err := checkOIDs(c.Parents); err != nil {
		return "", err
	}
	if c.BlobName == "" || strings.ContainsAny(c.BlobName, "/\x00\n\t") {
		return "", invalid("tree entry name %q", clip(c.BlobName))
	}
	blob, err := b.r.run(ctx, call{args: []string{"hash-object", "-w", "--stdin"}, gitDir: b.Dir, stdin: bytes.NewReader(c.Blob)})
	if err != nil {
		return "", fmt.Errorf("writing a change blob: %w", err)
	}
	tree, err := b.r.run(ctx, call{
		args: []string{"mktree"}, gitDir: b.Dir,
		stdin: strings.NewReader("100644 blob " + strings.TrimSpace(string(blob)) + "\t" + c.BlobName + "\n"),
	})
	if err != nil {
		return "", fmt.Errorf("writing a change tree: %w", err)
	}
	args := []string{"commit-tree", strings.TrimSpace(string(tree))}
	for _, p := range c.Parents {
		args = append(args, "-p", p)
	}
	author := strings.Map(func(r rune) rune {
		if r < ' ' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, c.Author)
	env := []string{
		"GIT_AUTHOR_NAME=" + author, "GIT_AUTHOR_EMAIL=" + author,
		"GIT_COMMITTER_NAME=" + author, "GIT_COMMITTER_EMAIL=" + author,
	}
	out, err := b.r.run(ctx, call{args: append(args, "-m", c.Message), gitDir: b.Dir, env: env})
	if err != nil {
		return "", fmt.Errorf("writing a change commit: %w", err)
	}
	commit := strings.TrimSpace(string(out))
	var expected []Ref
	if old != "" {
		expected = []Ref{{Name: ref, OID: old}}
	}
	if err := b.UpdateRefs(ctx, ns, expected, []Ref{{Name: ref, OID: commit}}); err != nil {
		return "", err
	}
	return commit, nil
}

// Commit is a parsed commit object: its tree and parents.
type Commit struct {
	Tree    string
	Parents []string
}

// TreeEntry is one entry of a tree object.
type TreeEntry struct {
	Mode string
	Name string
	OID  string
}

// ErrObjectTooLarge: an object read with ObjectReader exceeds the limit the
// caller gave.
var ErrObjectTooLarge = errors.New("object too large")

// ObjectReader reads objects of a replica through one git cat-file --batch
// process, however many objects are read. It is not safe for concurrent
// use; Close ends the process.
type ObjectReader struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	cancel context.CancelFunc
	once   sync.Once
	broken error
}

// Objects starts a cat-file --batch process on the replica. The process
// ends when ctx does or at Close.
func (b *Bare) Objects(ctx context.Context) (*ObjectReader, error) {
	ctx, cancel := context.WithTimeout(ctx, b.r.timeout())
	cmd := b.r.command(ctx, call{args: []string{"cat-file", "--batch"}, gitDir: b.Dir})
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, &Error{Command: "cat-file", ExitCode: -1, Err: err}
	}
	return &ObjectReader{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10), cancel: cancel}, nil
}

// Close ends the cat-file process.
func (o *ObjectReader) Close() error {
	o.once.Do(func() {
		o.in.Close()
		_ = o.cmd.Wait()
		o.cancel()
	})
	return nil
}

// Read returns the type and content of object oid; ErrMissingObjects if the
// replica lacks it, ErrObjectTooLarge if it is larger than max bytes (its
// content is skipped, never held in memory).
func (o *ObjectReader) Read(oid string, max int64) (string, []byte, error) {
	if o.broken != nil {
		return "", nil, o.broken
	}
	if err := CheckOID(oid); err != nil {
		return "", nil, err
	}
	if _, err := io.WriteString(o.in, oid+"\n"); err != nil {
		o.broken = fmt.Errorf("git cat-file: %w", err)
		return "", nil, o.broken
	}
	line, err := o.out.ReadString('\n')
	if err != nil {
		o.broken = fmt.Errorf("git cat-file: %w", err)
		return "", nil, o.broken
	}
	f := strings.Fields(line)
	if len(f) == 2 && f[1] == "missing" {
		return "", nil, fmt.Errorf("%w: %s", ErrMissingObjects, oid)
	}
	if len(f) != 3 || f[0] != oid {
		o.broken = fmt.Errorf("git cat-file: unexpected header %q", clip(line))
		return "", nil, o.broken
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		o.broken = fmt.Errorf("git cat-file: unexpected size in %q", clip(line))
		return "", nil, o.broken
	}
	if size > max {
		if _, err := io.CopyN(io.Discard, o.out, size+1); err != nil {
			o.broken = fmt.Errorf("git cat-file: %w", err)
			return "", nil, o.broken
		}
		return "", nil, fmt.Errorf("%w: %s %s is %d bytes, max %d", ErrObjectTooLarge, f[1], oid, size, max)
	}
	data := make([]byte, size+1) // and the newline after it
	if _, err := io.ReadFull(o.out, data); err != nil {
		o.broken = fmt.Errorf("git cat-file: %w", err)
		return "", nil, o.broken
	}
	return f[1], data[:size], nil
}

// maxCommitSize bounds a change commit read back (a commit with
// collab.MaxParents parents is about 3.5 KB).
const maxCommitSize = 64 << 10

// ReadCommit reads and parses commit oid.
func (o *ObjectReader) ReadCommit(oid string) (Commit, error) {
	typ, data, err := o.Read(oid, maxCommitSize)
	if err != nil {
		return Commit{}, err
	}
	if typ != "commit" {
		return Commit{}, fmt.Errorf("%w: %s is a %s, not a commit", ErrInvalid, oid, typ)
	}
	var c Commit
	header, _, _ := bytes.Cut(data, []byte("\n\n"))
	for line := range strings.Lines(string(header)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch k {
		case "tree":
			c.Tree = v
		case "parent":
			c.Parents = append(c.Parents, v)
		}
	}
	if CheckOID(c.Tree) != nil || checkOIDs(c.Parents) != nil {
		return Commit{}, fmt.Errorf("%w: commit %s has a malformed header", ErrInvalid, oid)
	}
	return c, nil
}

// maxTreeSize bounds a change tree read back (it has one entry).
const maxTreeSize = 4 << 10

// ReadTree reads and parses tree oid.
func (o *ObjectReader) ReadTree(oid string) ([]TreeEntry, error) {
	typ, data, err := o.Read(oid, maxTreeSize)
	if err != nil {
		return nil, err
	}
	if typ != "tree" {
		return nil, fmt.Errorf("%w: %s is a %s, not a tree", ErrInvalid, oid, typ)
	}
	hashLen := len(oid) / 2
	var entries []TreeEntry
	for len(data) > 0 {
		head, rest, ok := bytes.Cut(data, []byte{0})
		mode, name, ok2 := strings.Cut(string(head), " ")
		if !ok || !ok2 || len(rest) < hashLen {
			return nil, fmt.Errorf("%w: tree %s is malformed", ErrInvalid, oid)
		}
		entries = append(entries, TreeEntry{Mode: mode, Name: name, OID: hex.EncodeToString(rest[:hashLen])})
		data = rest[hashLen:]
	}
	return slices.Clip(entries), nil
}
