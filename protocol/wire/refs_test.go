package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

func TestSignRefsRoundTrip(t *testing.T) {
	key := vectorKey()
	in := vectorRefs()
	inCopy := vectorRefs()
	s, err := SignRefs(key, vectorRepo(), vectorTimeMs, in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, inCopy) {
		t.Fatal("SignRefs changed its argument")
	}
	in[0].OID[0] ^= 0xff // and does not keep a reference to it
	if oid, _ := refOID(s, "refs/heads/main"); !bytes.Equal(oid, inCopy[0].OID) {
		t.Fatal("SignRefs keeps the caller's OID slices")
	}
	names := []string{}
	for _, r := range s.Refs() {
		names = append(names, r.Name)
	}
	if want := []string{"refs/heads/dev", "refs/heads/main", "refs/tags/v1.0"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("refs in order %v, want %v", names, want)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSignedRefs(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", got, s)
	}
	if got.Repo() != vectorRepo() || got.Node() != key.ID() || got.Seq() != vectorTimeMs || len(got.Refs()) != 3 || got.Digest() != s.Digest() {
		t.Fatal("accessors disagree after round trip")
	}
	for _, r := range inCopy {
		oid, ok := refOID(got, r.Name)
		if !ok || !bytes.Equal(oid, r.OID) {
			t.Errorf("ref %q = %x, %v; want %x", r.Name, oid, ok, r.OID)
		}
	}
	refs := got.Refs()
	refs[0].OID[0] ^= 0xff // Refs returns a copy
	if !reflect.DeepEqual(got, s) {
		t.Fatal("changing the result of Refs changed the signed refs")
	}
}

func TestSignRefsEmptyAndSHA256(t *testing.T) {
	for _, refs := range [][]Ref{
		nil,
		{{Name: "refs/heads/main", OID: bytes.Repeat([]byte{7}, 32)}, {Name: "refs/heads/a", OID: bytes.Repeat([]byte{8}, 32)}},
	} {
		s, err := SignRefs(vectorKey(), vectorRepo(), 1, refs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenSignedRefs(b)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.Refs()); n != len(refs) {
			t.Fatalf("%d refs, want %d", n, len(refs))
		}
	}
}

func TestSignRefsRejects(t *testing.T) {
	oid := bytes.Repeat([]byte{1}, 20)
	for _, tc := range []struct {
		name string
		repo identity.RepoID
		seq  uint64
		refs []Ref
		want error
	}{
		{"duplicate", vectorRepo(), 1, []Ref{{"refs/heads/a", oid}, {"refs/heads/a", oid}}, ErrInvalid},
		{"bad name", vectorRepo(), 1, []Ref{{"refs/heads/../x", oid}}, ErrInvalid},
		{"oid 19 bytes", vectorRepo(), 1, []Ref{{"refs/heads/a", oid[:19]}}, ErrInvalid},
		{"mixed oid lengths", vectorRepo(), 1, []Ref{{"refs/heads/a", oid}, {"refs/heads/b", make([]byte, 32)}}, ErrInvalid},
		{"seq 0", vectorRepo(), 0, nil, ErrInvalid},
		{"zero repo", identity.RepoID{}, 1, nil, ErrInvalid},
		{"too many refs", vectorRepo(), 1, make([]Ref, MaxRefs+1), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SignRefs(vectorKey(), tc.repo, tc.seq, tc.refs); !errors.Is(err, tc.want) {
				t.Fatalf("SignRefs = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefsTooLarge(t *testing.T) {
	// MaxRefs refs with long names exceed MaxSignedRefsSize.
	refs := make([]Ref, MaxRefs)
	for i := range refs {
		refs[i] = Ref{Name: fmt.Sprintf("refs/heads/%05d/%s", i, strings.Repeat("x", MaxRefNameLen-20)), OID: make([]byte, 32)}
	}
	if _, err := SignRefs(vectorKey(), vectorRepo(), 1, refs); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SignRefs = %v, want ErrTooLarge", err)
	}
	big := bytes.Repeat([]byte{0xff}, MaxSignedRefsSize+1)
	if _, err := UnmarshalSignedRefs(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("UnmarshalSignedRefs = %v, want ErrTooLarge (checked before decoding)", err)
	}
}

func TestMaxRefsAccepted(t *testing.T) {
	refs := make([]Ref, MaxRefs)
	for i := range refs {
		refs[i] = Ref{Name: fmt.Sprintf("refs/heads/b%04d", i), OID: make([]byte, 20)}
	}
	s, err := SignRefs(vectorKey(), vectorRepo(), 1, refs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSignedRefs(b); err != nil {
		t.Fatalf("MaxRefs refs: %v", err)
	}
}

func TestCheckRefName(t *testing.T) {
	for _, name := range []string{
		"refs/heads/main",
		"refs/heads/feature/x-1",
		"refs/tags/v1.0",
		"refs/heads/a.b",
		"refs/heads/ünïcode",
		"refs/heads/@",
		"refs/heads/a@b",
		"refs/x",
		"refs/heads/" + strings.Repeat("a", MaxRefNameLen-len("refs/heads/")),
	} {
		if err := CheckRefName(name); err != nil {
			t.Errorf("CheckRefName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{
		"",
		"@",
		"HEAD",
		"..",
		"refs",
		"refs/",
		"heads/main",
		"/refs/heads/main",
		"refs/heads/../x",
		"refs/heads/..",
		"refs/../../etc/passwd",
		"refs/heads/a..b",
		"refs/heads/.hidden",
		"refs/heads/a/.b",
		"refs/heads/a.lock",
		"refs/heads/a.lock/b",
		"refs/heads/a b",
		"refs/heads/x\x00",
		"refs/heads/x\x1f",
		"refs/heads/x\x7f",
		"refs/heads/a~1",
		"refs/heads/a^",
		"refs/heads/a:b",
		"refs/heads/a?",
		"refs/heads/a*",
		"refs/heads/a[b",
		"refs/heads/a\\b",
		"refs/heads/a@{1}",
		"refs/heads//a",
		"refs/heads/a/",
		"refs/heads/a.",
		"refs/heads/\xff",
		"refs/heads/" + strings.Repeat("a", MaxRefNameLen-len("refs/heads/")+1),
	} {
		if err := CheckRefName(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckRefName(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

// rawSignedRefs signs and encodes refs exactly as given (unsorted,
// duplicated, …), for negative vectors.
func rawSignedRefs(t testing.TB, key *identity.Key, seq uint64, refs []Ref) []byte {
	t.Helper()
	s := &SignedRefs{repo: vectorRepo(), node: key.ID(), seq: seq, refs: refs}
	sb, err := s.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	s.sig = key.Sign(sb)
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type refsCase = envCase

func invalidSignedRefsCases(t testing.TB) []refsCase {
	key := vectorKey()
	good := vectorSignedRefs()
	sorted := good.Refs()
	var cases []refsCase
	add := func(name string, b []byte, want error) {
		cases = append(cases, refsCase{name: name, bytes: b, want: want})
	}
	rawMap := func(edit func(m map[uint64]any)) []byte {
		refs := []any{}
		for _, r := range sorted {
			refs = append(refs, []any{r.Name, r.OID})
		}
		m := map[uint64]any{1: good.repo.Multihash(), 2: good.node[:], 3: good.seq, 4: refs, 5: good.sig}
		edit(m)
		return mustCBOR(t, m)
	}

	b, _ := good.Marshal()
	b[len(b)-1] ^= 0x01
	add("signature_bit_flipped", b, ErrBadSignature)
	other := *good
	sb, _ := good.SignedBytes()
	other.sig = otherKey().Sign(sb)
	b, _ = other.Marshal()
	add("signature_by_other_key", b, ErrBadSignature)
	tampered := *good
	tampered.refs = good.Refs()
	tampered.refs[1].OID[0] ^= 0x01
	b, _ = tampered.Marshal()
	add("oid_modified", b, ErrBadSignature)
	tampered = *good
	tampered.seq++
	b, _ = tampered.Marshal()
	add("seq_modified", b, ErrBadSignature)

	add("refs_unsorted", rawSignedRefs(t, key, vectorTimeMs, []Ref{sorted[1], sorted[0], sorted[2]}), ErrInvalid)
	add("refs_duplicate", rawSignedRefs(t, key, vectorTimeMs, []Ref{sorted[0], sorted[0]}), ErrInvalid)
	for _, name := range []string{"HEAD", "refs/heads/../x", "refs/heads/a.lock", "refs/heads/a b", "refs/heads/x\x00", ".."} {
		add("ref_name_"+strings.Trim(fmt.Sprintf("%q", name), `"`), rawSignedRefs(t, key, vectorTimeMs, []Ref{{name, sorted[0].OID}}), ErrInvalid)
	}
	add("oid_length_mismatch", rawSignedRefs(t, key, vectorTimeMs, []Ref{sorted[0], {sorted[1].Name, make([]byte, 32)}}), ErrInvalid)
	add("oid_16_bytes", rawSignedRefs(t, key, vectorTimeMs, []Ref{{sorted[0].Name, make([]byte, 16)}}), ErrInvalid)
	add("seq_0", rawSignedRefs(t, key, 0, sorted), ErrInvalid)

	add("unknown_key", rawMap(func(m map[uint64]any) { m[6] = uint64(0) }), ErrMalformed)
	add("missing_seq", rawMap(func(m map[uint64]any) { delete(m, 3) }), ErrMalformed)
	add("null_refs", rawMap(func(m map[uint64]any) { m[4] = nil }), ErrMalformed)
	add("ref_triple", rawMap(func(m map[uint64]any) { m[4] = []any{[]any{sorted[0].Name, sorted[0].OID, uint64(0)}} }), ErrMalformed)
	add("ref_as_map", rawMap(func(m map[uint64]any) { m[4] = []any{map[string][]byte{sorted[0].Name: sorted[0].OID}} }), ErrMalformed)
	add("node_low_order", rawMap(func(m map[uint64]any) { n := make([]byte, 32); n[0] = 1; m[2] = n }), ErrMalformed)
	add("signature_65_bytes", rawMap(func(m map[uint64]any) { m[5] = make([]byte, 65) }), ErrMalformed)
	enc, _ := good.Marshal()
	dup := append([]byte{0xa6}, enc[1:]...)
	add("duplicate_key", append(dup, 0x03, 0x01), ErrMalformed)
	// Swap keys 1 and 2: decodes, but is not the canonical encoding.
	repoEnc := mustCBOR(t, good.repo.Multihash())
	nodeEnc := mustCBOR(t, good.node[:])
	if !bytes.HasPrefix(enc[1:], append([]byte{0x01}, repoEnc...)) {
		t.Fatal("unexpected signed refs layout")
	}
	rest := enc[1+1+len(repoEnc)+1+len(nodeEnc):]
	swapped := append([]byte{0xa5, 0x02}, nodeEnc...)
	swapped = append(append(append(swapped, 0x01), repoEnc...), rest...)
	add("keys_out_of_order", swapped, ErrMalformed)

	var many []any
	for i := range MaxRefs + 1 {
		many = append(many, []any{fmt.Sprintf("refs/heads/%05d", i), make([]byte, 20)})
	}
	cases = append(cases, refsCase{name: "too_many_refs", bytes: rawMap(func(m map[uint64]any) { m[4] = many }), want: ErrTooLarge, notInFile: true})
	cases = append(cases, refsCase{name: "oversize", bytes: make([]byte, MaxSignedRefsSize+1), want: ErrTooLarge, notInFile: true})
	return cases
}

func TestRejectSignedRefs(t *testing.T) {
	for _, c := range invalidSignedRefsCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := OpenSignedRefs(c.bytes)
			if !errors.Is(err, c.want) || s != nil {
				t.Fatalf("OpenSignedRefs = %v, %v; want %v", s, err, c.want)
			}
			for name, other := range errorNames {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("error %v is also %s", err, name)
				}
			}
		})
	}
}
