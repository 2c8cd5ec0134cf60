package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

func testDoc(t *testing.T, key *identity.Key) *RepoDoc {
	t.Helper()
	d, err := SignRepoDoc(key, RepoDocFields{Root: bytes.Repeat([]byte{7}, 20), Name: "tiny", Description: "Tiny\nrepo", DefaultBranch: "main", Created: 1795219200000})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRepoDocRoundTrip(t *testing.T) {
	k, _ := identity.GenerateKey()
	other, _ := identity.GenerateKey()
	d := testDoc(t, k)
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRepoDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := identity.NewRepoID(bytes.Repeat([]byte{7}, 20), k.ID())
	if got.Repo() != want || got.Creator() != k.ID() || got.Name() != "tiny" || got.DefaultBranch() != "main" ||
		!got.IsDelegate(k.ID()) || got.IsDelegate(other.ID()) || got.Digest() != d.Digest() {
		t.Fatalf("round trip changed the document: %+v", got)
	}
}

func TestRepoDocRejects(t *testing.T) {
	k, _ := identity.GenerateKey()
	other, _ := identity.GenerateKey()
	raw, _ := testDoc(t, k).Marshal()
	var w repoDocCBOR
	if err := cborx.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	reencode := func(mut func(*repoDocCBOR)) []byte {
		c := w
		mut(&c)
		b, err := cborx.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		raw  []byte
		want error
	}{
		"renamed (signature breaks)": {reencode(func(c *repoDocCBOR) { c.Name = "other" }), ErrBadSignature},
		"other creator":              {reencode(func(c *repoDocCBOR) { c.Creator = other.ID().PublicKey() }), ErrInvalid},
		"other root":                 {reencode(func(c *repoDocCBOR) { c.Root = bytes.Repeat([]byte{8}, 20) }), ErrInvalid},
		"bad branch":                 {reencode(func(c *repoDocCBOR) { c.DefaultBranch = "a..b" }), ErrInvalid},
		"empty name":                 {reencode(func(c *repoDocCBOR) { c.Name = "" }), ErrInvalid},
		"control char in name":       {reencode(func(c *repoDocCBOR) { c.Name = "a\x1bb" }), ErrInvalid},
		"no delegates":               {reencode(func(c *repoDocCBOR) { c.Delegates = [][]byte{} }), ErrInvalid},
		"creator not first":          {reencode(func(c *repoDocCBOR) { c.Delegates = [][]byte{other.ID().PublicKey(), c.Creator} }), ErrInvalid},
		"too large":                  {make([]byte, MaxRepoDocSize+1), ErrTooLarge},
		"garbage":                    {[]byte{0xff}, ErrMalformed},
	}
	for name, c := range cases {
		if _, err := OpenRepoDoc(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	if _, err := SignRepoDoc(k, RepoDocFields{Root: make([]byte, 20), Name: strings.Repeat("n", MaxRepoNameLen+1), DefaultBranch: "main"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("long name: %v", err)
	}
}

func TestCheckRepoNameAndDescription(t *testing.T) {
	for _, tc := range []struct {
		name, desc string
		nameOK     bool
		descOK     bool
	}{
		{"hello", "Hello, world", true, true},
		{"héllo wörld", "two\nlines\tand a tab", true, true},
		{strings.Repeat("n", MaxRepoNameLen), strings.Repeat("d", MaxDescriptionLen), true, true},
		{"", "", false, true},
		{strings.Repeat("n", MaxRepoNameLen+1), strings.Repeat("d", MaxDescriptionLen+1), false, false},
		{"two\nlines", "\x1b[31mred", false, false},
		{"tab\there", "carriage\rreturn", false, false},
		{"nul\x00", "del\x7f", false, false},
		{"c1\u0085", "c1\u0085", false, false},
		{"bad\xffutf8", "bad\xffutf8", false, false},
	} {
		if err := CheckRepoName(tc.name); (err == nil) != tc.nameOK || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckRepoName(%q) = %v, want ok %v", tc.name, err, tc.nameOK)
		}
		if err := CheckDescription(tc.desc); (err == nil) != tc.descOK || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckDescription(%q) = %v, want ok %v", tc.desc, err, tc.descOK)
		}
	}
}

func TestFetchFrames(t *testing.T) {
	var buf bytes.Buffer
	k, _ := identity.GenerateKey()
	repo, _ := identity.NewRepoID(make([]byte, 20), k.ID())
	req := FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{k.ID().PublicKey()}, Known: []KnownRefs{{Node: k.ID().PublicKey(), Seq: 5}}, Haves: [][]byte{make([]byte, 20)}}
	if err := WriteFetchMessage(&buf, FrameRequest, req); err != nil {
		t.Fatal(err)
	}
	if err := WriteFetchFrame(&buf, FramePack, []byte("PACK")); err != nil {
		t.Fatal(err)
	}
	typ, payload, err := ReadFetchFrame(&buf, FrameRequest)
	if err != nil || typ != FrameRequest {
		t.Fatal(typ, err)
	}
	got, gotRepo, err := DecodeFetchRequest(payload)
	if err != nil || gotRepo != repo || got.Known[0].Seq != 5 || len(got.Haves) != 1 {
		t.Fatalf("request round trip: %+v %v", got, err)
	}
	if _, _, err := ReadFetchFrame(&buf, FrameHeader, FrameEnd); !errors.Is(err, ErrFrame) {
		t.Fatalf("unexpected frame type accepted: %v", err)
	}
	// An oversize length is refused before the payload is read or allocated.
	var hdr [5]byte
	hdr[0] = FramePack
	binary.BigEndian.PutUint32(hdr[1:], MaxPackChunk+1)
	r := io.MultiReader(bytes.NewReader(hdr[:]), neverRead{t})
	if _, _, err := ReadFetchFrame(r, FramePack); !errors.Is(err, ErrFrame) {
		t.Fatalf("oversize frame: %v", err)
	}
	if err := WriteFetchFrame(io.Discard, FramePack, make([]byte, MaxPackChunk+1)); !errors.Is(err, ErrFrame) {
		t.Fatalf("writing an oversize frame: %v", err)
	}
	// Truncated payload.
	buf.Reset()
	WriteFetchFrame(&buf, FrameEnd, []byte{1, 2, 3})
	if _, _, err := ReadFetchFrame(bytes.NewReader(buf.Bytes()[:6]), FrameEnd); !errors.Is(err, ErrFrame) {
		t.Fatalf("truncated frame: %v", err)
	}
}

type neverRead struct{ t *testing.T }

func (n neverRead) Read([]byte) (int, error) {
	n.t.Error("payload read after an oversize header")
	return 0, io.EOF
}

func TestDecodeFetchRequestRejects(t *testing.T) {
	k, _ := identity.GenerateKey()
	repo, _ := identity.NewRepoID(make([]byte, 20), k.ID())
	enc := func(q FetchRequest) []byte { b, _ := cborx.Marshal(q); return b }
	for name, raw := range map[string][]byte{
		"bad repo":      enc(FetchRequest{Repo: []byte{1, 2}}),
		"bad have":      enc(FetchRequest{Repo: repo.Multihash(), Haves: [][]byte{{1, 2, 3}}}),
		"bad namespace": enc(FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{make([]byte, 32)}}),
		"too many haves": enc(FetchRequest{Repo: repo.Multihash(), Haves: func() [][]byte {
			h := make([][]byte, MaxHaves+1)
			for i := range h {
				h[i] = make([]byte, 20)
			}
			return h
		}()}),
		"not cbor": []byte("hello"),
	} {
		if _, _, err := DecodeFetchRequest(raw); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
