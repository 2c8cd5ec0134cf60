package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

func TestRoundTrip(t *testing.T) {
	key := vectorKey()
	for _, body := range []Body{
		vectorNode(),
		&NodeAnnouncement{Kind: KindRelay, Addresses: []string{}, Features: []string{}},
		vectorRepoAnn(),
		&RepoAnnouncement{Repo: vectorRepo()}, // a replica without refs of its own
		vectorActivity(),
	} {
		t.Run(body.Type().String(), func(t *testing.T) {
			e := mustSign(t, key, body)
			if e.Version != ProtocolVersion || e.Type != body.Type() || e.Origin != key.ID() || e.TTL != DefaultTTL || e.Timestamp != vectorTimeMs {
				t.Fatalf("unexpected header %+v", e)
			}
			b := mustMarshal(t, e)
			got, gotBody, err := open(b, vectorTime)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("envelope changed in round trip:\n got  %+v\n want %+v", got, e)
			}
			if !reflect.DeepEqual(gotBody, body) {
				t.Errorf("body changed in round trip:\n got  %+v\n want %+v", gotBody, body)
			}
			if got.ID() != e.ID() {
				t.Error("id changed in round trip")
			}
			if again := mustMarshal(t, got); !bytes.Equal(again, b) {
				t.Error("re-encoding differs")
			}
		})
	}
}

func TestSignNilSlices(t *testing.T) {
	// A body built with nil slices encodes them as empty arrays (never null)
	// and decodes to empty slices.
	e := mustSign(t, vectorKey(), &NodeAnnouncement{Alias: "x"})
	_, body, err := open(mustMarshal(t, e), vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	n := body.(*NodeAnnouncement)
	if n.Alias != "x" || n.Addresses == nil || len(n.Addresses) != 0 || len(n.Features) != 0 {
		t.Fatalf("got %+v", n)
	}
}

func TestSignRejectsInvalidBody(t *testing.T) {
	tooMany := &ActivityAnnouncement{Repo: vectorRepo()}
	for i := range MaxHeads + 1 {
		tooMany.Heads = append(tooMany.Heads, [32]byte{byte(i)})
	}
	for _, body := range []Body{
		tooMany,
		&NodeAnnouncement{Kind: 2},
		&NodeAnnouncement{Addresses: []string{"no-port"}},
		&NodeAnnouncement{Alias: strings.Repeat("a", MaxAliasLen+1)},
		&RepoAnnouncement{},
		&ActivityAnnouncement{Repo: vectorRepo()},
		(*NodeAnnouncement)(nil),
	} {
		if _, err := Sign(vectorKey(), vectorTime, body); !errors.Is(err, ErrInvalid) {
			t.Errorf("Sign(%T) = %v, want ErrInvalid", body, err)
		}
	}
	if _, err := Sign(vectorKey(), time.UnixMilli(-1), vectorNode()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Sign before 1970 = %v, want ErrInvalid", err)
	}
}

func TestTTLIsNotSigned(t *testing.T) {
	e := mustSign(t, vectorKey(), vectorNode())
	id := e.ID()
	for ttl := range uint8(MaxTTL + 1) {
		e.TTL = ttl
		got, _, err := open(mustMarshal(t, e), vectorTime)
		if err != nil {
			t.Fatalf("ttl %d: %v", ttl, err)
		}
		if got.TTL != ttl || got.ID() != id {
			t.Fatalf("ttl %d: got ttl %d, id %v; want id %v", ttl, got.TTL, got.ID(), id)
		}
	}
}

func TestRelayed(t *testing.T) {
	e := mustSign(t, vectorKey(), vectorNode())
	hops := 0
	for cur := e; ; hops++ {
		next, ok := cur.Relayed()
		if !ok {
			if cur.TTL != 0 {
				t.Fatalf("Relayed refused at ttl %d", cur.TTL)
			}
			break
		}
		if next.TTL != cur.TTL-1 || next.ID() != e.ID() {
			t.Fatalf("relayed copy: ttl %d id %v", next.TTL, next.ID())
		}
		if _, _, err := open(mustMarshal(t, next), vectorTime); err != nil {
			t.Fatalf("relayed copy does not verify: %v", err)
		}
		next.Body[0] ^= 0xff // the copy does not share memory with the original
		if e.Body[0] == next.Body[0] {
			t.Fatal("relayed copy shares its body with the original")
		}
		next.Body[0] ^= 0xff
		cur = next
	}
	if hops != DefaultTTL {
		t.Fatalf("relayed %d times, want %d", hops, DefaultTTL)
	}
	if e.TTL != DefaultTTL {
		t.Fatal("Relayed modified the original")
	}
}

func TestFreshnessBoundaries(t *testing.T) {
	key := vectorKey()
	for _, tc := range []struct {
		name   string
		offset time.Duration // timestamp minus now
		want   error
	}{
		{"now", 0, nil},
		{"max future skew", MaxFutureSkew, nil},
		{"just past future skew", MaxFutureSkew + time.Millisecond, ErrFutureTimestamp},
		{"far future", 365 * 24 * time.Hour, ErrFutureTimestamp},
		{"max age", -MaxAge, nil},
		{"just past max age", -MaxAge - time.Millisecond, ErrExpired},
		{"epoch", -time.Duration(vectorTimeMs) * time.Millisecond, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Sign(key, vectorTime.Add(tc.offset), vectorNode())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Verify(vectorTime); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// A timestamp near the top of uint64 must not wrap around.
	e := signRaw(t, key, ProtocolVersion, TypeNodeAnnouncement, ^uint64(0), mustBody(t, vectorNode()))
	if err := e.Verify(vectorTime); !errors.Is(err, ErrFutureTimestamp) {
		t.Fatalf("max uint64 timestamp: %v", err)
	}
	// A clock before 1970 + MaxAge expires nothing.
	e = signRaw(t, key, ProtocolVersion, TypeNodeAnnouncement, 0, mustBody(t, vectorNode()))
	if err := e.Verify(time.UnixMilli(0)); err != nil {
		t.Fatalf("timestamp 0 at now 0: %v", err)
	}
}

func mustBody(t testing.TB, b Body) []byte {
	t.Helper()
	enc, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestOversizeRejectedBeforeDecoding(t *testing.T) {
	// 0xff is a CBOR "break" byte: decoding it would fail as malformed. Only
	// a size check made before decoding yields ErrTooLarge.
	b := bytes.Repeat([]byte{0xff}, MaxEnvelopeSize+1)
	if _, err := Unmarshal(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unmarshal = %v, want ErrTooLarge", err)
	}
	if _, _, err := open(b, vectorTime); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("open = %v, want ErrTooLarge", err)
	}
	if _, err := Unmarshal(b[:MaxEnvelopeSize]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Unmarshal at the limit = %v, want ErrMalformed", err)
	}
}

func TestMarshalTooLarge(t *testing.T) {
	e := signRaw(t, vectorKey(), ProtocolVersion, TypeNodeAnnouncement, vectorTimeMs, make([]byte, MaxEnvelopeSize-100))
	if _, err := e.Marshal(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Marshal = %v, want ErrTooLarge", err)
	}
	e.TTL = MaxTTL + 1
	e.Body = nil
	if _, err := e.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Marshal with ttl %d = %v, want ErrInvalid", e.TTL, err)
	}
}

func TestOpenUnknownTypeReturnsEnvelope(t *testing.T) {
	e := signRaw(t, vectorKey(), ProtocolVersion, 99, vectorTimeMs, mustCBOR(t, map[uint64]any{1: "future"}))
	got, body, err := open(mustMarshal(t, e), vectorTime)
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("open = %v, want ErrUnknownType", err)
	}
	if got == nil || body != nil || got.ID() != e.ID() {
		t.Fatalf("open returned envelope %v body %v, want the verified envelope and no body", got, body)
	}
	// Not for an unauthentic one.
	e.Signature[0] ^= 1
	if got, _, err := open(mustMarshal(t, e), vectorTime); got != nil || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("open forged unknown type = %v, %v", got, err)
	}
}

func TestSubjects(t *testing.T) {
	if s := vectorNode().Subject(); s != "" {
		t.Errorf("node subject %q", s)
	}
	want := vectorRepo().String()
	if s := vectorRepoAnn().Subject(); s != want {
		t.Errorf("repo subject %q, want %q", s, want)
	}
	if s := vectorActivity().Subject(); s != want {
		t.Errorf("activity subject %q, want %q", s, want)
	}
}

// envCase is an envelope every implementation must reject.
type envCase struct {
	name  string
	bytes []byte
	want  error
	// notInFile keeps a case out of spec/vectors/wire-invalid.json (too
	// big to be worth storing as hex).
	notInFile bool
}

// invalidEnvelopeCases builds the negative envelope vectors. All are opened
// at vectorTime.
func invalidEnvelopeCases(t testing.TB) []envCase {
	key, other := vectorKey(), otherKey()
	good := func() *Envelope { return mustSign(t, key, vectorNode()) }
	signed := func(body []byte) []byte {
		return mustMarshal(t, signRaw(t, key, ProtocolVersion, TypeNodeAnnouncement, vectorTimeMs, body))
	}
	signedAs := func(typ MsgType, body []byte) []byte {
		return mustMarshal(t, signRaw(t, key, ProtocolVersion, typ, vectorTimeMs, body))
	}
	node := func(edit func(n *NodeAnnouncement)) []byte {
		n := vectorNode()
		edit(n)
		return signed(mustBody(t, n))
	}
	// rawEnvelope encodes any key/value map, signed over its own fields, for
	// envelopes Marshal refuses to produce.
	raw := func(edit func(m map[uint64]any)) []byte {
		e := good()
		m := map[uint64]any{1: e.Version, 2: uint64(e.Type), 3: e.Origin[:], 4: e.Timestamp, 5: e.Body, 6: e.Signature, 7: uint64(e.TTL)}
		edit(m)
		return mustCBOR(t, m)
	}
	// nodeMapBody encodes a NodeAnnouncement body map with edits.
	nodeMap := func(edit func(m map[uint64]any)) []byte {
		n := vectorNode()
		m := map[uint64]any{1: n.Alias, 2: n.Addresses, 3: uint64(n.Kind), 4: n.Version, 5: n.Features}
		edit(m)
		return signed(mustCBOR(t, m))
	}
	var cases []envCase
	add := func(name string, b []byte, want error) {
		cases = append(cases, envCase{name: name, bytes: b, want: want})
	}

	// Signatures.
	e := good()
	e.Signature[0] ^= 0x01
	add("signature_bit_flipped", mustMarshal(t, e), ErrBadSignature)
	e = good()
	sb, _ := e.SignedBytes()
	e.Signature = other.Sign(sb)
	add("signature_by_other_key", mustMarshal(t, e), ErrBadSignature)
	e = good()
	e.Origin = other.ID()
	add("origin_replaced", mustMarshal(t, e), ErrBadSignature)
	e = good()
	n := vectorNode()
	n.Alias = "mallory"
	e.Body = mustBody(t, n)
	add("body_modified", mustMarshal(t, e), ErrBadSignature)
	e = good()
	e.Timestamp++
	add("timestamp_modified", mustMarshal(t, e), ErrBadSignature)
	e = good()
	e.Type = TypeRepoAnnouncement
	add("type_modified", mustMarshal(t, e), ErrBadSignature)

	// Envelope structure.
	add("ttl_above_max", raw(func(m map[uint64]any) { m[7] = uint64(MaxTTL + 1) }), ErrInvalid)
	add("ttl_huge", raw(func(m map[uint64]any) { m[7] = uint64(1) << 40 }), ErrInvalid)
	dup := mustMarshal(t, good())
	if dup[0] != 0xa7 {
		t.Fatalf("envelope does not start with a 7-pair map header: %x", dup[0])
	}
	dup = append([]byte{0xa8}, dup[1:]...)
	add("duplicate_key", append(dup, 0x07, 0x10), ErrMalformed) // key 7 again
	add("unknown_key", raw(func(m map[uint64]any) { m[8] = uint64(0) }), ErrMalformed)
	add("missing_ttl", raw(func(m map[uint64]any) { delete(m, 7) }), ErrMalformed)
	add("missing_signature", raw(func(m map[uint64]any) { delete(m, 6) }), ErrMalformed)
	add("missing_version", raw(func(m map[uint64]any) { delete(m, 1) }), ErrMalformed)
	add("null_body", raw(func(m map[uint64]any) { m[5] = nil }), ErrMalformed)
	add("text_key", raw(func(m map[uint64]any) { m[1] = "1" }), ErrMalformed)
	add("signature_63_bytes", raw(func(m map[uint64]any) { m[6] = make([]byte, 63) }), ErrMalformed)
	add("unsigned_node_announcement", raw(func(m map[uint64]any) { m[6] = []byte{} }), ErrMalformed)
	unsignedLink := func(typ MsgType, body Body, tsMs uint64) []byte {
		m := map[uint64]any{1: uint64(ProtocolVersion), 2: uint64(typ), 3: key.ID().PublicKey(), 4: tsMs, 5: mustBody(t, body), 6: []byte{}, 7: uint64(0)}
		return mustCBOR(t, m)
	}
	prune := &Prune{IDs: []MessageID{{1}}}
	add("unsigned_subscribe", unsignedLink(TypeSubscribe, NewSubscribe(nil, false, 0), vectorTimeMs), ErrMalformed)
	add("unsigned_prune_expired", unsignedLink(TypePrune, prune, vectorTimeMs-uint64(MaxAge.Milliseconds())-1), ErrExpired)
	add("unsigned_prune_from_the_future", unsignedLink(TypePrune, prune, vectorTimeMs+uint64(MaxFutureSkew.Milliseconds())+1), ErrFutureTimestamp)
	add("origin_31_bytes", raw(func(m map[uint64]any) { m[3] = make([]byte, 31) }), ErrMalformed)
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1 // the identity point
	add("origin_low_order", raw(func(m map[uint64]any) { m[3] = lowOrder }), ErrMalformed)
	add("negative_timestamp", raw(func(m map[uint64]any) { m[4] = int64(-1) }), ErrMalformed)
	add("trailing_byte", append(mustMarshal(t, good()), 0x00), ErrMalformed)
	add("not_a_map", mustCBOR(t, []any{uint64(1)}), ErrMalformed)
	add("empty_input", []byte{}, ErrMalformed)
	indef := mustMarshal(t, good())
	indef = append(append([]byte{0xbf}, indef[1:]...), 0xff)
	add("indefinite_length_map", indef, ErrMalformed)
	add("tagged", append([]byte{0xd9, 0xd9, 0xf7}, mustMarshal(t, good())...), ErrMalformed)

	// Version, type, freshness (all correctly signed).
	add("bad_version_2", mustMarshal(t, signRaw(t, key, 2, TypeNodeAnnouncement, vectorTimeMs, mustBody(t, vectorNode()))), ErrBadVersion)
	add("bad_version_0", mustMarshal(t, signRaw(t, key, 0, TypeNodeAnnouncement, vectorTimeMs, mustBody(t, vectorNode()))), ErrBadVersion)
	add("unknown_type", signedAs(99, mustBody(t, vectorNode())), ErrUnknownType)
	add("type_0", signedAs(0, mustBody(t, vectorNode())), ErrUnknownType)
	future := uint64(vectorTimeMs + MaxFutureSkew.Milliseconds() + 1)
	add("future_timestamp", mustMarshal(t, signRaw(t, key, ProtocolVersion, TypeNodeAnnouncement, future, mustBody(t, vectorNode()))), ErrFutureTimestamp)
	old := uint64(vectorTimeMs - MaxAge.Milliseconds() - 1)
	add("expired", mustMarshal(t, signRaw(t, key, ProtocolVersion, TypeNodeAnnouncement, old, mustBody(t, vectorNode()))), ErrExpired)

	// Body encoding (signed, so only the body is at fault).
	canon := mustBody(t, vectorNode())
	reordered := []byte{0xa5}
	reordered = append(reordered, canon[1+2+len("alice"):]...)  // keys 2..5
	reordered = append(reordered, canon[1:1+2+len("alice")]...) // key 1 last
	add("body_keys_out_of_order", signed(reordered), ErrMalformed)
	kindAt := bytes.Index(canon, []byte{0x03, 0x00, 0x04})
	if kindAt < 0 {
		t.Fatal("kind not found in NodeAnnouncement encoding")
	}
	nonMinimal := append(append(append([]byte{}, canon[:kindAt+1]...), 0x18, 0x00), canon[kindAt+2:]...)
	add("body_non_minimal_integer", signed(nonMinimal), ErrMalformed)
	add("body_missing_key", nodeMap(func(m map[uint64]any) { delete(m, 4) }), ErrMalformed)
	add("body_null_addresses", nodeMap(func(m map[uint64]any) { m[2] = nil }), ErrMalformed)
	add("body_unknown_key", nodeMap(func(m map[uint64]any) { m[6] = uint64(0) }), ErrMalformed)
	add("body_alias_as_bytes", nodeMap(func(m map[uint64]any) { m[1] = []byte("alice") }), ErrMalformed)
	add("body_invalid_utf8", nodeMap(func(m map[uint64]any) { m[1] = "\xff" }), ErrMalformed)
	add("body_trailing_byte", signed(append(mustBody(t, vectorNode()), 0x00)), ErrMalformed)
	add("body_empty", signed([]byte{}), ErrMalformed)
	add("body_of_other_type", signedAs(TypeNodeAnnouncement, mustBody(t, vectorRepoAnn())), ErrMalformed)

	// NodeAnnouncement fields.
	add("alias_too_long", node(func(n *NodeAnnouncement) { n.Alias = strings.Repeat("a", MaxAliasLen+1) }), ErrInvalid)
	add("alias_control_character", node(func(n *NodeAnnouncement) { n.Alias = "al\nice" }), ErrInvalid)
	add("address_without_port", node(func(n *NodeAnnouncement) { n.Addresses = []string{"192.0.2.7"} }), ErrInvalid)
	add("address_port_zero", node(func(n *NodeAnnouncement) { n.Addresses = []string{"192.0.2.7:0"} }), ErrInvalid)
	add("address_too_long", node(func(n *NodeAnnouncement) { n.Addresses = []string{strings.Repeat("a", MaxAddressLen-4) + ":9000"} }), ErrInvalid)
	add("address_duplicate", node(func(n *NodeAnnouncement) { n.Addresses = []string{"192.0.2.7:9000", "192.0.2.7:9000"} }), ErrInvalid)
	add("too_many_addresses", node(func(n *NodeAnnouncement) {
		n.Addresses = nil
		for i := range MaxAddresses + 1 {
			n.Addresses = append(n.Addresses, "192.0.2.7:"+string(rune('1'+i)))
		}
	}), ErrInvalid)
	add("kind_2", node(func(n *NodeAnnouncement) { n.Kind = 2 }), ErrInvalid)
	add("version_too_long", node(func(n *NodeAnnouncement) { n.Version = strings.Repeat("1", MaxVersionLen+1) }), ErrInvalid)
	add("version_with_space", node(func(n *NodeAnnouncement) { n.Version = "0.1 beta" }), ErrInvalid)
	add("feature_uppercase", node(func(n *NodeAnnouncement) { n.Features = []string{"Datagrams"} }), ErrInvalid)
	add("feature_empty", node(func(n *NodeAnnouncement) { n.Features = []string{""} }), ErrInvalid)
	add("features_unsorted", node(func(n *NodeAnnouncement) { n.Features = []string{"signed-refs", "datagrams"} }), ErrInvalid)
	add("features_duplicate", node(func(n *NodeAnnouncement) { n.Features = []string{"datagrams", "datagrams"} }), ErrInvalid)
	add("too_many_features", node(func(n *NodeAnnouncement) {
		n.Features = nil
		for i := range MaxFeatures + 1 {
			n.Features = append(n.Features, "f"+string(rune('a'+i)))
		}
	}), ErrInvalid)

	// RepoAnnouncement fields.
	ra := vectorRepoAnn()
	raMap := func(edit func(m map[uint64]any)) []byte {
		m := map[uint64]any{1: ra.Repo.Multihash(), 2: ra.Doc[:], 3: ra.RefsSeq, 4: ra.RefsDigest[:]}
		edit(m)
		return signedAs(TypeRepoAnnouncement, mustCBOR(t, m))
	}
	add("repo_sha256_multihash", raMap(func(m map[uint64]any) { m[1] = append([]byte{0x12, 0x20}, ra.Repo[:]...) }), ErrMalformed)
	add("repo_32_bytes", raMap(func(m map[uint64]any) { m[1] = ra.Repo[:] }), ErrMalformed)
	add("repo_zero", raMap(func(m map[uint64]any) { m[1] = identity.RepoID{}.Multihash() }), ErrInvalid)
	add("doc_31_bytes", raMap(func(m map[uint64]any) { m[2] = make([]byte, 31) }), ErrMalformed)
	add("refs_seq_0_with_digest", raMap(func(m map[uint64]any) { m[3] = uint64(0) }), ErrInvalid)
	add("refs_digest_zero_with_seq", raMap(func(m map[uint64]any) { m[4] = make([]byte, 32) }), ErrInvalid)

	// ActivityAnnouncement fields.
	act := func(heads [][]byte) []byte {
		return signedAs(TypeActivityAnnouncement, mustCBOR(t, map[uint64]any{1: vectorRepo().Multihash(), 2: heads}))
	}
	var many [][]byte
	for i := range MaxHeads + 1 {
		h := make([]byte, 32)
		h[0] = byte(i)
		many = append(many, h)
	}
	add("too_many_heads", act(many), ErrInvalid)
	add("no_heads", act([][]byte{}), ErrInvalid)
	add("heads_unsorted", act([][]byte{many[1], many[0]}), ErrInvalid)
	add("heads_duplicate", act([][]byte{many[0], many[0]}), ErrInvalid)
	add("head_31_bytes", act([][]byte{many[0][:31]}), ErrMalformed)

	// Too large to keep in the vector file.
	cases = append(cases, envCase{
		name:      "oversize",
		bytes:     append(mustMarshal(t, good()), make([]byte, MaxEnvelopeSize)...),
		want:      ErrTooLarge,
		notInFile: true,
	})
	return cases
}

func TestRejectEnvelope(t *testing.T) {
	for _, c := range invalidEnvelopeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			e, body, err := open(c.bytes, vectorTime)
			if !errors.Is(err, c.want) {
				t.Fatalf("open = %v, want %v", err, c.want)
			}
			if body != nil || (e != nil && c.want != ErrUnknownType) {
				t.Fatalf("open returned a result with error %v", err)
			}
			for name, other := range errorNames {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("error %v is also %s", err, name)
				}
			}
		})
	}
}
