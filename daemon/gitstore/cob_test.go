package gitstore

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A change commit written by WriteChange reads back through one cat-file
// process: its tree holds the one blob, its parents are as written, and the
// ref moved only from the expected value.
func TestWriteAndReadChange(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	ref := "refs/cobs/issue/" + "ab"
	root, err := b.WriteChange(ctx, nsA, ref, "", ChangeCommit{BlobName: "change.cbor", Blob: []byte("root"), Message: "issue change", Author: "did:key:z6Mk"})
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.WriteChange(ctx, nsA, ref, root, ChangeCommit{BlobName: "change.cbor", Blob: []byte("next"), Parents: []string{root}, Message: "m", Author: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteChange(ctx, nsA, ref, root, ChangeCommit{BlobName: "change.cbor", Blob: []byte("late"), Parents: []string{root}, Message: "m", Author: "a"}); err == nil {
		t.Fatal("a write from a stale ref value succeeded")
	}
	refs, err := b.RefsUnder(ctx, "refs/cobs/")
	if err != nil || !slices.Equal(refs, []NamespacedRef{{nsA, ref, next}}) {
		t.Fatalf("RefsUnder = %v, %v", refs, err)
	}
	o, err := b.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	c, err := o.ReadCommit(next)
	if err != nil || !slices.Equal(c.Parents, []string{root}) {
		t.Fatalf("ReadCommit = %+v, %v", c, err)
	}
	entries, err := o.ReadTree(c.Tree)
	if err != nil || len(entries) != 1 || entries[0].Name != "change.cbor" || entries[0].Mode != "100644" {
		t.Fatalf("ReadTree = %+v, %v", entries, err)
	}
	typ, data, err := o.Read(entries[0].OID, 100)
	if err != nil || typ != "blob" || string(data) != "next" {
		t.Fatalf("Read = %s %q %v", typ, data, err)
	}
	if _, _, err := o.Read(strings.Repeat("1", len(next)), 100); !errors.Is(err, ErrMissingObjects) {
		t.Fatalf("reading a missing object: %v", err)
	}
	if _, _, err := o.Read(entries[0].OID, 2); !errors.Is(err, ErrObjectTooLarge) {
		t.Fatalf("reading over the limit: %v", err)
	}
	if _, data, err := o.Read(entries[0].OID, 100); err != nil || string(data) != "next" {
		t.Fatalf("reading after a skipped object: %q, %v", data, err)
	}
}

// Import mirrors the working repository's branches and tags but keeps the
// namespace's collaborative objects, which the working repository never has.
func TestImportKeepsCobRefs(t *testing.T) {
	r := &Runner{}
	ctx := ctxT(t)
	b := newBare(t, r)
	work := newWork(t)
	commitFile(t, work, "a.txt", "one\n", "one")
	if _, err := b.Import(ctx, work, nsA); err != nil {
		t.Fatal(err)
	}
	cob, err := b.WriteChange(ctx, nsA, "refs/cobs/issue/ab", "", ChangeCommit{BlobName: "change.cbor", Blob: []byte("x"), Message: "m", Author: "a"})
	if err != nil {
		t.Fatal(err)
	}
	commitFile(t, work, "a.txt", "two\n", "two")
	refs, err := b.Import(ctx, work, nsA)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(refs, Ref{"refs/cobs/issue/ab", cob}) {
		t.Fatalf("Import dropped the cob ref: %v", refs)
	}
}
