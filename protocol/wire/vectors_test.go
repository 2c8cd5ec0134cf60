package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// go test ./protocol/wire/ -run 'TestVectors' -update rewrites the vector
// files from the inputs in helpers_test.go. Without -update the tests check
// that the files agree with this code byte for byte.
var update = flag.Bool("update", false, "rewrite spec/vectors/wire*.json")

var (
	vectorsPath        = filepath.Join("..", "..", "spec", "vectors", "wire.json")
	invalidVectorsPath = filepath.Join("..", "..", "spec", "vectors", "wire-invalid.json")
)

type vectorFile struct {
	Description string           `json:"description"`
	Seed        string           `json:"seed"`
	PublicKey   string           `json:"public_key"`
	TimestampMs uint64           `json:"timestamp_ms"`
	SignedRefs  signedRefsVector `json:"signed_refs"`
	Envelopes   []envelopeVector `json:"envelopes"`
	SeedRequest seedVector       `json:"seed_request"`
}

// seedVector is a seed request (spec/node.md §6) signed at timestamp_ms.
type seedVector struct {
	Repo        string `json:"repo"`
	SignedBytes string `json:"signed_bytes"`
	Signature   string `json:"signature"`
	Encoding    string `json:"encoding"`
	Frame       string `json:"frame"`
}

type refVector struct {
	Name string `json:"name"`
	OID  string `json:"oid"`
}

type signedRefsVector struct {
	Repo        string      `json:"repo"`
	Node        string      `json:"node"`
	Seq         uint64      `json:"seq"`
	Refs        []refVector `json:"refs"`
	SignedBytes string      `json:"signed_bytes"`
	Digest      string      `json:"digest"`
	Signature   string      `json:"signature"`
	Encoding    string      `json:"encoding"`
}

type envelopeVector struct {
	Name        string          `json:"name"`
	Type        MsgType         `json:"type"`
	Body        json.RawMessage `json:"body"`
	BodyCBOR    string          `json:"body_cbor"`
	SignedBytes string          `json:"signed_bytes"`
	MessageID   string          `json:"message_id"`
	Signature   string          `json:"signature"`
	TTL         uint8           `json:"ttl"`
	Envelope    string          `json:"envelope"`
	Datagram    bool            `json:"fits_datagram"`
}

type nodeJSON struct {
	Alias     string   `json:"alias"`
	Addresses []string `json:"addresses"`
	Kind      NodeKind `json:"kind"`
	Version   string   `json:"version"`
	Features  []string `json:"features"`
}

type repoJSON struct {
	Repo       string `json:"repo"`
	Doc        string `json:"doc"`
	RefsSeq    uint64 `json:"refs_seq"`
	RefsDigest string `json:"refs_digest"`
}

type activityJSON struct {
	Repo  string   `json:"repo"`
	Heads []string `json:"heads"`
}

// subscribeJSON gives the followed repositories (the filter's input)
// and the filter they make.
type subscribeJSON struct {
	Repos  []string `json:"repos"`
	Filter string   `json:"filter"`
	Hashes uint64   `json:"hashes"`
	Relay  bool     `json:"relay"`
	Since  uint64   `json:"since"`
}

type linkIDsJSON struct {
	IDs []string `json:"ids"`
}

func idsToJSON(ids []MessageID) linkIDsJSON {
	j := linkIDsJSON{IDs: []string{}}
	for _, id := range ids {
		j.IDs = append(j.IDs, hex.EncodeToString(id[:]))
	}
	return j
}

func idsFromJSON(j linkIDsJSON) []MessageID {
	var ids []MessageID
	for _, h := range j.IDs {
		var id MessageID
		copy(id[:], mustHex(h))
		ids = append(ids, id)
	}
	return ids
}

func bodyToJSON(b Body) any {
	switch b := b.(type) {
	case *NodeAnnouncement:
		return nodeJSON{b.Alias, b.Addresses, b.Kind, b.Version, b.Features}
	case *RepoAnnouncement:
		return repoJSON{hex.EncodeToString(b.Repo.Multihash()), hex.EncodeToString(b.Doc[:]), b.RefsSeq, hex.EncodeToString(b.RefsDigest[:])}
	case *ActivityAnnouncement:
		heads := make([]string, len(b.Heads))
		for i, h := range b.Heads {
			heads[i] = hex.EncodeToString(h[:])
		}
		return activityJSON{hex.EncodeToString(b.Repo.Multihash()), heads}
	case *Subscribe:
		return subscribeJSON{[]string{hex.EncodeToString(vectorRepo().Multihash())}, hex.EncodeToString(b.Filter), b.Hashes, b.Relay, b.Since}
	case *IHave:
		return idsToJSON(b.IDs)
	case *Graft:
		return idsToJSON(b.IDs)
	case *Prune:
		return idsToJSON(b.IDs)
	}
	panic("unknown body")
}

func bodyFromJSON(typ MsgType, raw json.RawMessage) (Body, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	switch typ {
	case TypeNodeAnnouncement:
		var j nodeJSON
		if err := dec.Decode(&j); err != nil {
			return nil, err
		}
		return &NodeAnnouncement{j.Alias, j.Addresses, j.Kind, j.Version, j.Features}, nil
	case TypeRepoAnnouncement:
		var j repoJSON
		if err := dec.Decode(&j); err != nil {
			return nil, err
		}
		repo, err := identity.RepoIDFromMultihash(mustHex(j.Repo))
		if err != nil {
			return nil, err
		}
		a := &RepoAnnouncement{Repo: repo, RefsSeq: j.RefsSeq}
		copy(a.Doc[:], mustHex(j.Doc))
		copy(a.RefsDigest[:], mustHex(j.RefsDigest))
		return a, nil
	case TypeActivityAnnouncement:
		var j activityJSON
		if err := dec.Decode(&j); err != nil {
			return nil, err
		}
		repo, err := identity.RepoIDFromMultihash(mustHex(j.Repo))
		if err != nil {
			return nil, err
		}
		a := &ActivityAnnouncement{Repo: repo}
		for _, h := range j.Heads {
			var id [32]byte
			copy(id[:], mustHex(h))
			a.Heads = append(a.Heads, id)
		}
		return a, nil
	case TypeSubscribe:
		return subscribeFromJSON(dec)
	case TypeIHave, TypeGraft, TypePrune:
		var j linkIDsJSON
		if err := dec.Decode(&j); err != nil {
			return nil, err
		}
		switch ids := idsFromJSON(j); typ {
		case TypeIHave:
			return &IHave{IDs: ids}, nil
		case TypeGraft:
			return &Graft{IDs: ids}, nil
		default:
			return &Prune{IDs: ids}, nil
		}
	}
	return nil, fmt.Errorf("no JSON form for %v", typ)
}

// subscribeFromJSON builds the Subscribe from its repositories and checks
// that their filter is the vector's.
func subscribeFromJSON(dec *json.Decoder) (Body, error) {
	var j subscribeJSON
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	var repos []identity.RepoID
	for _, h := range j.Repos {
		r, err := identity.RepoIDFromMultihash(mustHex(h))
		if err != nil {
			return nil, err
		}
		repos = append(repos, r)
	}
	s := NewSubscribe(repos, j.Relay, j.Since)
	if hex.EncodeToString(s.Filter) != j.Filter || s.Hashes != j.Hashes {
		return nil, fmt.Errorf("the filter of %d repositories is %x (%d hashes), the vector says %s (%d)", len(repos), s.Filter, s.Hashes, j.Filter, j.Hashes)
	}
	return s, nil
}

// vectorBodies are the inputs of the envelope vectors: one per message
// type, as sent (IHave, Graft and Prune unsigned), the Prune of versions
// before topics (no ids) and a signed Prune as the first link-message
// version sent them (still accepted). The link messages name the
// repository announcement's id.
func vectorBodies(t testing.TB) []struct {
	name     string
	body     Body
	unsigned bool
} {
	ann := mustSign(t, vectorKey(), vectorRepoAnn()).ID()
	ids := []MessageID{ann}
	return []struct {
		name     string
		body     Body
		unsigned bool
	}{
		{"node_announcement", vectorNode(), false},
		{"repo_announcement", vectorRepoAnn(), false},
		{"activity_announcement", vectorActivity(), false},
		{"subscribe", NewSubscribe([]identity.RepoID{vectorRepo()}, false, vectorTimeMs-3600_000), false},
		{"ihave", &IHave{IDs: ids}, true},
		{"graft", &Graft{IDs: ids}, true},
		{"prune", &Prune{IDs: ids}, true},
		{"prune_without_ids", &Prune{}, true},
		{"prune_signed", &Prune{IDs: ids}, false},
	}
}

// vectorSign makes a vector's envelope: signed, or unsigned; link
// messages are sent with TTL 0.
func vectorSign(t testing.TB, key *identity.Key, ts time.Time, body Body, unsigned bool) *Envelope {
	var e *Envelope
	var err error
	if unsigned {
		e, err = Unsigned(key.ID(), ts, body)
	} else {
		e, err = Sign(key, ts, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	if IsLink(e.Type) {
		e.TTL = 0
	}
	return e
}

// buildVectors computes the vector file from the inputs in helpers_test.go.
func buildVectors(t testing.TB) []byte {
	key := vectorKey()
	s := vectorSignedRefs()
	sb, err := s.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	digest := s.Digest()
	f := vectorFile{
		Description: "MegaEngine wire format test vectors (spec/wire.md). Key: RFC 8032 test 1. " +
			"All byte strings are lowercase hex. Regenerate with: go test ./protocol/wire/ -run TestVectors -update",
		Seed:        vectorSeedHex,
		PublicKey:   hex.EncodeToString(key.ID().PublicKey()),
		TimestampMs: vectorTimeMs,
		SignedRefs: signedRefsVector{
			Repo:        hex.EncodeToString(s.Repo().Multihash()),
			Node:        hex.EncodeToString(s.node[:]),
			Seq:         s.Seq(),
			SignedBytes: hex.EncodeToString(sb),
			Digest:      hex.EncodeToString(digest[:]),
			Signature:   hex.EncodeToString(s.sig),
			Encoding:    hex.EncodeToString(enc),
		},
	}
	for _, r := range s.Refs() {
		f.SignedRefs.Refs = append(f.SignedRefs.Refs, refVector{r.Name, hex.EncodeToString(r.OID)})
	}
	for _, v := range vectorBodies(t) {
		e := vectorSign(t, key, vectorTime, v.body, v.unsigned)
		sb, err := e.SignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		wireBytes := mustMarshal(t, e)
		id := e.ID()
		bodyJSON, err := json.Marshal(bodyToJSON(v.body))
		if err != nil {
			t.Fatal(err)
		}
		f.Envelopes = append(f.Envelopes, envelopeVector{
			Name:        v.name,
			Type:        e.Type,
			Body:        bodyJSON,
			BodyCBOR:    hex.EncodeToString(e.Body),
			SignedBytes: hex.EncodeToString(sb),
			MessageID:   hex.EncodeToString(id[:]),
			Signature:   hex.EncodeToString(e.Signature),
			TTL:         e.TTL,
			Envelope:    hex.EncodeToString(wireBytes),
			Datagram:    len(wireBytes) <= DatagramBudget,
		})
	}
	f.SeedRequest = buildSeedVector(t)
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func buildSeedVector(t testing.TB) seedVector {
	r := vectorSeedRequest(t)
	sb, err := r.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var frame bytes.Buffer
	if err := WriteSeedFrame(&frame, enc); err != nil {
		t.Fatal(err)
	}
	return seedVector{
		Repo:        hex.EncodeToString(r.Repo.Multihash()),
		SignedBytes: hex.EncodeToString(sb),
		Signature:   hex.EncodeToString(r.Signature),
		Encoding:    hex.EncodeToString(enc),
		Frame:       hex.EncodeToString(frame.Bytes()),
	}
}

func checkFileUpToDate(t *testing.T, path string, want []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the code; run go test ./protocol/wire/ -run TestVectors -update and review the diff", path)
	}
}

func TestVectorsUpToDate(t *testing.T) {
	checkFileUpToDate(t, vectorsPath, buildVectors(t))
	checkFileUpToDate(t, invalidVectorsPath, buildInvalidVectors(t))
}

// TestVectors checks the vector file as an implementation in another
// language would: from its inputs, produce exactly its outputs, and accept
// its encodings.
func TestVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	key, err := identity.KeyFromSeed(mustHex(f.Seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.ID().PublicKey()); got != f.PublicKey {
		t.Fatalf("public key %s, vector says %s", got, f.PublicKey)
	}
	ts := time.UnixMilli(int64(f.TimestampMs))

	t.Run("signed_refs", func(t *testing.T) {
		v := f.SignedRefs
		repo, err := identity.RepoIDFromMultihash(mustHex(v.Repo))
		if err != nil {
			t.Fatal(err)
		}
		var refs []Ref
		for _, r := range v.Refs {
			refs = append(refs, Ref{r.Name, mustHex(r.OID)})
		}
		s, err := SignRefs(key, repo, v.Seq, refs)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := s.SignedBytes()
		enc, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		d := s.Digest()
		checkHex(t, "signed bytes", sb, v.SignedBytes)
		checkHex(t, "digest", d[:], v.Digest)
		checkHex(t, "signature", s.sig, v.Signature)
		checkHex(t, "encoding", enc, v.Encoding)
		checkHex(t, "node", key.ID().PublicKey(), v.Node)

		got, err := OpenSignedRefs(mustHex(v.Encoding))
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != d || !reflect.DeepEqual(got.Refs(), s.Refs()) || got.Seq() != v.Seq || got.Repo() != repo || got.Node() != key.ID() {
			t.Fatalf("decoded signed refs differ from the vector's inputs")
		}
	})

	t.Run("seed_request", func(t *testing.T) {
		v := f.SeedRequest
		repo, err := identity.RepoIDFromMultihash(mustHex(v.Repo))
		if err != nil {
			t.Fatal(err)
		}
		r, err := SignSeedRequest(key, repo, ts)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := r.SignedBytes()
		enc, _ := r.Marshal()
		checkHex(t, "signed bytes", sb, v.SignedBytes)
		checkHex(t, "signature", r.Signature, v.Signature)
		checkHex(t, "encoding", enc, v.Encoding)
		b, err := ReadSeedFrame(bytes.NewReader(mustHex(v.Frame)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalSeedRequest(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Repo != repo || got.Requester != key.ID() || got.Timestamp != f.TimestampMs {
			t.Fatalf("decoded seed request %+v differs from the vector's inputs", got)
		}
	})

	if len(f.Envelopes) != len(vectorBodies(t)) {
		t.Fatalf("%d envelope vectors, want one per message type, the Prune without ids and the signed Prune (%d)", len(f.Envelopes), len(vectorBodies(t)))
	}
	for _, v := range f.Envelopes {
		t.Run(v.Name, func(t *testing.T) {
			body, err := bodyFromJSON(v.Type, v.Body)
			if err != nil {
				t.Fatal(err)
			}
			e := vectorSign(t, key, ts, body, v.Signature == "")
			sb, _ := e.SignedBytes()
			id := e.ID()
			checkHex(t, "body", e.Body, v.BodyCBOR)
			checkHex(t, "signed bytes", sb, v.SignedBytes)
			checkHex(t, "message id", id[:], v.MessageID)
			checkHex(t, "signature", e.Signature, v.Signature)
			checkHex(t, "envelope", mustMarshal(t, e), v.Envelope)
			if e.TTL != v.TTL {
				t.Errorf("ttl %d, vector says %d", e.TTL, v.TTL)
			}
			if got := len(v.Envelope)/2 <= DatagramBudget; got != v.Datagram {
				t.Errorf("fits datagram %v, vector says %v", got, v.Datagram)
			}

			got, gotBody, err := open(mustHex(v.Envelope), ts)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID() != id {
				t.Errorf("opened envelope has id %v, want %v", got.ID(), id)
			}
			if !reflect.DeepEqual(gotBody, body) {
				t.Errorf("opened body %+v, want %+v", gotBody, body)
			}
		})
	}
}

func checkHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got  %s\n want %s", what, g, want)
	}
}

// Negative vectors: inputs every implementation must reject, with the class
// of error. Kept in a file so that implementations in other languages can
// run them too.

type invalidFile struct {
	Description string          `json:"description"`
	Cases       []invalidVector `json:"cases"`
}

type invalidVector struct {
	Name  string `json:"name"`
	Input string `json:"input"` // "envelope" or "signed_refs"
	NowMs uint64 `json:"now_ms,omitempty"`
	Hex   string `json:"hex"`
	Error string `json:"error"`
}

var errorNames = map[string]error{
	"too_large":        ErrTooLarge,
	"malformed":        ErrMalformed,
	"unknown_type":     ErrUnknownType,
	"bad_signature":    ErrBadSignature,
	"future_timestamp": ErrFutureTimestamp,
	"expired":          ErrExpired,
	"bad_version":      ErrBadVersion,
	"invalid":          ErrInvalid,
}

func buildInvalidVectors(t testing.TB) []byte {
	f := invalidFile{
		Description: "Inputs that must be rejected (spec/wire.md), with the error class. " +
			"input says which decoder: \"envelope\" (open at now_ms) or \"signed_refs\". " +
			"Regenerate with: go test ./protocol/wire/ -run TestVectors -update",
	}
	for _, c := range invalidEnvelopeCases(t) {
		if !c.notInFile {
			f.Cases = append(f.Cases, invalidVector{c.name, "envelope", vectorTimeMs, hex.EncodeToString(c.bytes), errName(c.want)})
		}
	}
	for _, c := range invalidSignedRefsCases(t) {
		if !c.notInFile {
			f.Cases = append(f.Cases, invalidVector{c.name, "signed_refs", 0, hex.EncodeToString(c.bytes), errName(c.want)})
		}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func errName(err error) string {
	for name, e := range errorNames {
		if e == err {
			return name
		}
	}
	panic(fmt.Sprintf("no name for %v", err))
}

func TestInvalidVectors(t *testing.T) {
	raw, err := os.ReadFile(invalidVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f invalidFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 20 {
		t.Fatalf("only %d invalid vectors", len(f.Cases))
	}
	for _, c := range f.Cases {
		t.Run(c.Input+"/"+c.Name, func(t *testing.T) {
			want, ok := errorNames[c.Error]
			if !ok {
				t.Fatalf("unknown error class %q", c.Error)
			}
			var err error
			switch c.Input {
			case "envelope":
				_, _, err = open(mustHex(c.Hex), time.UnixMilli(int64(c.NowMs)))
			case "signed_refs":
				_, err = OpenSignedRefs(mustHex(c.Hex))
			default:
				t.Fatalf("unknown input %q", c.Input)
			}
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
}
