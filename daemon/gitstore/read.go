package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Read-only views of a replica's objects, for the web view: trees, blobs,
// commits and diffs. Every method takes object ids (checked with CheckOID),
// never paths or ref names: a caller resolves a path by walking trees from
// a commit, one Tree call per component.

// Entry is one entry of a git tree as git ls-tree --long lists it.
type Entry struct {
	Mode string // "100644", "100755", "120000" (symlink), "040000" (tree), "160000" (submodule)
	Type string // "blob", "tree" or "commit" (a submodule)
	OID  string
	Size int64  // bytes of a blob; -1 for trees and submodules
	Name string // one path component, as git stores it
}

// Tree lists the tree oid names, or the root tree of commit oid (git
// ls-tree -z --long), in git's order.
func (b *Bare) Tree(ctx context.Context, oid string) ([]Entry, error) {
	if err := CheckOID(oid); err != nil {
		return nil, err
	}
	out, err := b.r.run(ctx, call{args: []string{"ls-tree", "-z", "--long", oid}, gitDir: b.Dir})
	if err != nil {
		return nil, fmt.Errorf("listing tree %s: %w", oid, err)
	}
	entries := []Entry{}
	for _, rec := range strings.Split(string(out), "\x00") {
		if rec == "" {
			continue
		}
		meta, name, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 || name == "" {
			return nil, fmt.Errorf("listing tree %s: unexpected git ls-tree record %q", oid, clip(rec))
		}
		size := int64(-1)
		if f[3] != "-" {
			if size, err = strconv.ParseInt(f[3], 10, 64); err != nil {
				return nil, fmt.Errorf("listing tree %s: size %q", oid, f[3])
			}
		}
		entries = append(entries, Entry{Mode: f[0], Type: f[1], OID: f[2], Size: size, Name: name})
	}
	return entries, nil
}

// Blob returns up to max bytes of blob oid; truncated reports that it is
// longer. Memory stays bounded by max whatever the blob's size.
func (b *Bare) Blob(ctx context.Context, oid string, max int) (data []byte, truncated bool, err error) {
	if err := CheckOID(oid); err != nil {
		return nil, false, err
	}
	w := &capWriter{max: max}
	if _, err := b.r.run(ctx, call{args: []string{"cat-file", "blob", oid}, gitDir: b.Dir, stdout: w}); err != nil {
		return nil, false, fmt.Errorf("reading blob %s: %w", oid, err)
	}
	return w.buf.Bytes(), w.over, nil
}

// CommitOf returns the commit oid names: oid itself if it is a commit, the
// commit an annotated tag points to, else an error wrapping
// ErrMissingObjects (absent, or not a commit).
func (b *Bare) CommitOf(ctx context.Context, oid string) (string, error) {
	if err := CheckOID(oid); err != nil {
		return "", err
	}
	out, err := b.r.run(ctx, call{args: []string{"cat-file", "--batch-check"}, gitDir: b.Dir, stdin: strings.NewReader(oid + "^{commit}\n")})
	if err != nil {
		return "", fmt.Errorf("looking up commit %s: %w", oid, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[1] != "commit" || CheckOID(f[0]) != nil {
		return "", fmt.Errorf("%w: no commit %s in the replica", ErrMissingObjects, oid)
	}
	return f[0], nil
}

// Signature is the author or committer of a commit.
type Signature struct {
	Name  string
	Email string
	When  time.Time
}

// CommitInfo is a parsed commit object: what a history or a commit page shows.
type CommitInfo struct {
	OID       string
	Tree      string
	Parents   []string
	Author    Signature
	Committer Signature
	Message   string // as stored: the subject line, a blank line, the body
}

// Subject is the message's first line.
func (c CommitInfo) Subject() string {
	s, _, _ := strings.Cut(c.Message, "\n")
	return s
}

// Log returns at most n commits reachable from oid, newest first (git
// rev-list order), after skipping skip of them.
func (b *Bare) Log(ctx context.Context, oid string, skip, n int) ([]CommitInfo, error) {
	if err := CheckOID(oid); err != nil {
		return nil, err
	}
	if skip < 0 || n <= 0 {
		return nil, invalid("log window %d+%d", skip, n)
	}
	out, err := b.r.run(ctx, call{args: []string{
		"rev-list", "--max-count=" + strconv.Itoa(n), "--skip=" + strconv.Itoa(skip), oid,
	}, gitDir: b.Dir})
	if err != nil {
		return nil, fmt.Errorf("listing the history of %s: %w", oid, err)
	}
	return b.Commits(ctx, strings.Fields(string(out)))
}

// Commits reads and parses the given commits with one git cat-file
// --batch: exact sizes, so no message content can be taken for a
// separator. An absent object or one that is not a commit is an error
// wrapping ErrMissingObjects.
func (b *Bare) Commits(ctx context.Context, oids []string) ([]CommitInfo, error) {
	if err := checkOIDs(oids); err != nil {
		return nil, err
	}
	if len(oids) == 0 {
		return []CommitInfo{}, nil
	}
	in := strings.Join(oids, "\n") + "\n"
	out, err := b.r.run(ctx, call{args: []string{"cat-file", "--batch"}, gitDir: b.Dir, stdin: strings.NewReader(in)})
	if err != nil {
		return nil, fmt.Errorf("reading commits: %w", err)
	}
	rd := bufio.NewReader(bytes.NewReader(out))
	commits := make([]CommitInfo, 0, len(oids))
	for _, want := range oids {
		header, err := rd.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading commits: git cat-file: %w", err)
		}
		f := strings.Fields(header)
		if len(f) != 3 || f[0] != want || f[1] != "commit" {
			return nil, fmt.Errorf("%w: %s is not a commit in the replica", ErrMissingObjects, want)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || size < 0 || size > len(out) {
			return nil, fmt.Errorf("reading commits: git cat-file: size %q", f[2])
		}
		raw := make([]byte, size+1) // the object and its newline
		if _, err := io.ReadFull(rd, raw); err != nil {
			return nil, fmt.Errorf("reading commits: git cat-file: %w", err)
		}
		commits = append(commits, parseCommit(want, string(raw[:size])))
	}
	return commits, nil
}

// parseCommit reads a raw commit object: header lines, a blank line, the
// message. Unknown headers (gpgsig, encoding, mergetag) are skipped.
func parseCommit(oid, raw string) CommitInfo {
	c := CommitInfo{OID: oid}
	head, msg, _ := strings.Cut(raw, "\n\n")
	c.Message = msg
	for line := range strings.Lines(head) {
		line = strings.TrimSuffix(line, "\n")
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			c.Tree = val
		case "parent":
			c.Parents = append(c.Parents, val)
		case "author":
			c.Author = parseSignature(val)
		case "committer":
			c.Committer = parseSignature(val)
		}
	}
	return c
}

// parseSignature reads "Name <email> 1700000000 +0100".
func parseSignature(s string) Signature {
	var sig Signature
	lt, gt := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if lt < 0 || gt < lt {
		sig.Name = s
		return sig
	}
	sig.Name, sig.Email = strings.TrimSpace(s[:lt]), s[lt+1:gt]
	f := strings.Fields(s[gt+1:])
	if len(f) >= 1 {
		if sec, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			loc := time.UTC
			if len(f) >= 2 {
				if tz, err := time.Parse("-0700", f[1]); err == nil {
					loc = tz.Location()
				}
			}
			sig.When = time.Unix(sec, 0).In(loc)
		}
	}
	return sig
}

// Diff returns up to max bytes of the patch of commit oid against parent
// (git diff-tree --patch-with-stat -M), or against the empty tree when
// parent is ""; truncated reports that there was more. No external diff
// driver or textconv runs.
func (b *Bare) Diff(ctx context.Context, parent, oid string, max int) (patch []byte, truncated bool, err error) {
	if err := CheckOID(oid); err != nil {
		return nil, false, err
	}
	args := []string{"diff-tree", "--no-commit-id", "--patch-with-stat", "-M", "--no-color", "--no-ext-diff", "--no-textconv"}
	if parent == "" {
		args = append(args, "--root", oid)
	} else {
		if err := CheckOID(parent); err != nil {
			return nil, false, err
		}
		args = append(args, parent, oid)
	}
	w := &capWriter{max: max}
	if _, err := b.r.run(ctx, call{args: args, gitDir: b.Dir, stdout: w}); err != nil {
		return nil, false, fmt.Errorf("diffing %s: %w", oid, err)
	}
	return w.buf.Bytes(), w.over, nil
}

// capWriter keeps the first max bytes written and drops the rest, so git
// can finish writing without the output growing without bound.
type capWriter struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		w.over = true
		return len(p), nil
	}
	return w.buf.Write(p)
}
