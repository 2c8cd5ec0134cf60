package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

func mustNext(t *testing.T, d *RepoDoc, mut func(*DocChange), signers ...*identity.Key) *RepoDoc {
	t.Helper()
	c := d.Change()
	mut(&c)
	n, err := d.Next(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range signers {
		if n, err = n.Sign(k); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func reopen(t *testing.T, d *RepoDoc) *RepoDoc {
	t.Helper()
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o, err := OpenRepoDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDocChainThreshold(t *testing.T) {
	a, b, c := vectorKey(), otherKey(), keyFromHex(hex.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	first := testDoc(t, a)
	chain, err := OpenDocChain(docBytes(t, first), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Version 2: the creator alone (threshold 1) adds b and c and asks for two.
	v2 := mustNext(t, first, func(ch *DocChange) {
		ch.Delegates, ch.Threshold = append(ch.Delegates, b.ID(), c.ID()), 2
	}, a)
	if chain, err = chain.Append(reopen(t, v2)); err != nil {
		t.Fatal(err)
	}
	// Version 3 renames; one signature is not enough any more.
	v3 := mustNext(t, v2, func(ch *DocChange) { ch.Name = "renamed" }, b)
	if _, err := chain.Append(v3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("one of two signatures accepted: %v", err)
	}
	if missing, err := v2.CheckNext(v3); err != nil || missing != 1 {
		t.Fatalf("missing = %d, %v; want 1", missing, err)
	}
	// The same change made on c's node is the same proposal: merged, it is valid.
	fromC := mustNext(t, v2, func(ch *DocChange) { ch.Name = "renamed" }, c)
	merged, err := v3.Merge(fromC)
	if err != nil {
		t.Fatal(err)
	}
	if chain, err = chain.Append(reopen(t, merged)); err != nil {
		t.Fatal(err)
	}
	if chain.Len() != 3 || chain.Latest().Name() != "renamed" || chain.Latest().Threshold() != 2 || chain.Latest().Version() != 3 {
		t.Fatalf("chain = %d versions, latest %q", chain.Len(), chain.Latest().Name())
	}
	again, err := OpenDocChain(chain.FirstRaw(), chain.Later())
	if err != nil || !again.Extends(chain) || !chain.Extends(again) || again.Latest().Digest() != merged.Digest() {
		t.Fatalf("reopened chain differs: %v", err)
	}
	// Removed from the delegates, a key can no longer sign.
	v4 := mustNext(t, merged, func(ch *DocChange) { ch.Delegates, ch.Threshold = []identity.NodeID{b.ID(), c.ID()}, 1 }, b, c)
	if chain, err = chain.Append(v4); err != nil {
		t.Fatal(err)
	}
	v5 := mustNext(t, v4, func(ch *DocChange) { ch.Description = "by the removed creator" }, a)
	if _, err := chain.Append(v5); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a removed delegate's version accepted: %v", err)
	}
}

func TestDocChainRejects(t *testing.T) {
	a, b := vectorKey(), otherKey()
	first := testDoc(t, a)
	chain, _ := OpenDocChain(docBytes(t, first), nil)
	v2 := mustNext(t, first, func(ch *DocChange) { ch.Name = "two" }, a)
	if _, err := first.Next(first.Change()); !errors.Is(err, ErrInvalid) {
		t.Errorf("a version that changes nothing: %v", err)
	}
	if _, err := first.Next(DocChange{Name: "x", Delegates: []identity.NodeID{a.ID()}, Threshold: 2}); !errors.Is(err, ErrInvalid) {
		t.Errorf("threshold above the delegates: %v", err)
	}
	byStranger := mustNext(t, first, func(ch *DocChange) { ch.Name = "two" }, b)
	if _, err := chain.Append(byStranger); !errors.Is(err, ErrInvalid) {
		t.Errorf("signed by a non-delegate: %v", err)
	}
	skip := mustNext(t, v2, func(ch *DocChange) { ch.Name = "three" }, a)
	if _, err := chain.Append(skip); !errors.Is(err, ErrInvalid) {
		t.Errorf("version 3 on version 1: %v", err)
	}
	unsigned := mustNext(t, first, func(ch *DocChange) { ch.Name = "two" })
	if _, err := OpenRepoDoc(docBytes(t, unsigned)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("an unsigned later version opened: %v", err)
	}
	forged := *v2
	forged.name = "forged"
	if _, err := OpenRepoDoc(docBytes(t, &forged)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a changed later version opened: %v", err)
	}
	if _, err := OpenDocChain(docBytes(t, v2), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a chain starting at version 2: %v", err)
	}
	if _, err := OpenDocChain(docBytes(t, first), make([][]byte, MaxDocVersions)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a chain over the limit: %v", err)
	}
}

func docBytes(t *testing.T, d *RepoDoc) []byte {
	t.Helper()
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// docVectorFile is spec/vectors/repodoc.json: a three-version chain.
type docVectorFile struct {
	Description string          `json:"description"`
	Seeds       []string        `json:"seeds"`
	Versions    []docVectorStep `json:"versions"`
}

type docVectorStep struct {
	Version     uint64   `json:"version"`
	Name        string   `json:"name"`
	Delegates   []string `json:"delegates"`
	Threshold   int      `json:"threshold"`
	Signers     []string `json:"signers"`
	SignedBytes string   `json:"signed_bytes"`
	Digest      string   `json:"digest"`
	Encoding    string   `json:"encoding"`
}

func buildDocVectors(t *testing.T) docVectorFile {
	a, b := vectorKey(), otherKey()
	first := testDoc(t, a)
	v2 := mustNext(t, first, func(ch *DocChange) { ch.Delegates, ch.Threshold = append(ch.Delegates, b.ID()), 2 }, a)
	v3 := mustNext(t, v2, func(ch *DocChange) { ch.Name = "tiny-renamed" }, a, b)
	f := docVectorFile{
		Description: "A repository identity chain (spec/repo.md §2): the first document by the creator; version 2, signed by the creator, adds a delegate and sets the threshold to 2; version 3, signed by both, renames. Byte strings are lowercase hex. Regenerate with: go test ./protocol/wire/ -run TestDocVectors -update",
		Seeds:       []string{vectorSeedHex, otherSeedHex},
	}
	for _, d := range []*RepoDoc{first, v2, v3} {
		sb, _ := d.SignedBytes()
		dg := d.Digest()
		s := docVectorStep{Version: d.Version(), Name: d.Name(), Threshold: d.Threshold(),
			SignedBytes: hex.EncodeToString(sb), Digest: hex.EncodeToString(dg[:]), Encoding: hex.EncodeToString(docBytes(t, d))}
		for _, k := range d.Delegates() {
			s.Delegates = append(s.Delegates, k.String())
		}
		for _, k := range d.Signers() {
			s.Signers = append(s.Signers, k.String())
		}
		f.Versions = append(f.Versions, s)
	}
	return f
}

func TestDocVectors(t *testing.T) {
	path := filepath.Join("..", "..", "spec", "vectors", "repodoc.json")
	want := buildDocVectors(t)
	if *update {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got docVectorFile
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// The file's encodings open as a chain whose digests are the file's.
	var raws [][]byte
	for _, v := range got.Versions {
		raw, _ := hex.DecodeString(v.Encoding)
		raws = append(raws, raw)
	}
	chain, err := OpenDocChain(raws[0], raws[1:])
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got.Versions {
		dg := chain.docs[i].Digest()
		if hex.EncodeToString(dg[:]) != v.Digest || v.Encoding != want.Versions[i].Encoding {
			t.Fatalf("version %d of spec/vectors/repodoc.json disagrees with this code; regenerate and review", v.Version)
		}
	}
}

func TestStoredRepoDocName(t *testing.T) {
	d := testDoc(t, vectorKey())
	v2 := mustNext(t, d, func(c *DocChange) { c.Name = "renamed" }, vectorKey())
	for want, doc := range map[string]*RepoDoc{"tiny": d, "renamed": v2} {
		if got, err := StoredRepoDocName(docBytes(t, doc)); err != nil || got != want {
			t.Errorf("StoredRepoDocName = %q, %v; want %q", got, err, want)
		}
	}
}
