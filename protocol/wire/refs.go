package wire

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Ref is one git ref: its full name ("refs/heads/main") and the binary id of
// the object it points to (20 bytes for SHA-1 repositories, 32 for SHA-256).
type Ref struct {
	Name string
	OID  []byte
}

// SignedRefs is a node's signed statement of the refs in its namespace of
// one repository (DESIGN D5). Any node may serve it; a receiver accepts
// fetched refs only if they equal the namespace owner's signed refs.
//
// Map keys (ONLY APPEND, never renumber); all are required: 1 repo (34-byte
// multihash), 2 node (32 bytes), 3 seq (uint), 4 refs (array of
// [name, oid] arrays), 5 signature (64 bytes).
//
// A SignedRefs is immutable. Values from SignRefs and OpenSignedRefs are
// verified; one from UnmarshalSignedRefs is well-formed but its signature is
// unchecked until Verify.
type SignedRefs struct {
	repo identity.RepoID
	node identity.NodeID
	seq  uint64
	refs []Ref // sorted by name, names unique
	sig  []byte
}

type refCBOR struct {
	_    struct{} `cbor:",toarray"`
	Name string
	OID  []byte
}

type signedRefsCBOR struct {
	Repo      []byte    `cbor:"1,keyasint"`
	Node      []byte    `cbor:"2,keyasint"`
	Seq       uint64    `cbor:"3,keyasint"`
	Refs      []refCBOR `cbor:"4,keyasint"`
	Signature []byte    `cbor:"5,keyasint"`
}

// signedRefsSignedCBOR is the signed part: everything but the signature.
type signedRefsSignedCBOR struct {
	Repo []byte    `cbor:"1,keyasint"`
	Node []byte    `cbor:"2,keyasint"`
	Seq  uint64    `cbor:"3,keyasint"`
	Refs []refCBOR `cbor:"4,keyasint"`
}

// SignRefs signs refs (a sorted copy is made; the argument is not changed)
// as key's refs of repo with sequence number seq. seq must be at least 1 and
// larger than any seq key signed before for repo: callers use the current
// time in Unix milliseconds, bumped past the previous value if the clock has
// not advanced.
func SignRefs(key *identity.Key, repo identity.RepoID, seq uint64, refs []Ref) (*SignedRefs, error) {
	if key == nil {
		return nil, fmt.Errorf("signing refs: %w: nil key", ErrInvalid)
	}
	if len(refs) > MaxRefs {
		return nil, fmt.Errorf("signing refs: %w: %d refs, max %d", ErrTooLarge, len(refs), MaxRefs)
	}
	sorted := make([]Ref, len(refs))
	for i, r := range refs {
		sorted[i] = Ref{Name: r.Name, OID: bytes.Clone(r.OID)}
	}
	slices.SortFunc(sorted, func(a, b Ref) int { return strings.Compare(a.Name, b.Name) })
	s := &SignedRefs{repo: repo, node: key.ID(), seq: seq, refs: sorted}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("signing refs: %w", err)
	}
	sb, err := s.SignedBytes()
	if err != nil {
		return nil, fmt.Errorf("signing refs: %w", err)
	}
	s.sig = key.Sign(sb)
	if _, err := s.Marshal(); err != nil {
		return nil, fmt.Errorf("signing refs: %w", err)
	}
	return s, nil
}

// UnmarshalSignedRefs decodes signed refs: size checked first, then strict
// and canonical decoding, then the rules of validate. It does not check the
// signature; bytes from the network should go through OpenSignedRefs.
func UnmarshalSignedRefs(b []byte) (*SignedRefs, error) {
	if len(b) > MaxSignedRefsSize {
		return nil, fmt.Errorf("decoding signed refs: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxSignedRefsSize)
	}
	var w signedRefsCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("signed refs", err)
	}
	if w.Refs == nil {
		return nil, fmt.Errorf("decoding signed refs: %w: refs null", ErrMalformed)
	}
	repo, err := decodeRepoID(w.Repo)
	if err != nil {
		return nil, fmt.Errorf("decoding signed refs: %w", err)
	}
	node, err := identity.NodeIDFromPublicKey(w.Node)
	if err != nil {
		return nil, fmt.Errorf("decoding signed refs: %w: node: %w", ErrMalformed, err)
	}
	if len(w.Signature) != signatureLen {
		return nil, fmt.Errorf("decoding signed refs: %w: signature of %d bytes, want %d", ErrMalformed, len(w.Signature), signatureLen)
	}
	// The decoder caps arrays at cborx.MaxArrayElements; check our own limit
	// before allocating the refs.
	if len(w.Refs) > MaxRefs {
		return nil, fmt.Errorf("decoding signed refs: %w: %d refs, max %d", ErrTooLarge, len(w.Refs), MaxRefs)
	}
	s := &SignedRefs{repo: repo, node: node, seq: w.Seq, refs: make([]Ref, len(w.Refs)), sig: w.Signature}
	for i, r := range w.Refs {
		s.refs[i] = Ref{Name: r.Name, OID: r.OID}
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("decoding signed refs: %w", err)
	}
	return s, nil
}

// OpenSignedRefs is the entry point for signed refs from the network:
// UnmarshalSignedRefs then Verify.
func OpenSignedRefs(b []byte) (*SignedRefs, error) {
	s, err := UnmarshalSignedRefs(b)
	if err != nil {
		return nil, err
	}
	if err := s.Verify(); err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks everything but the signature: a non-zero repo, seq ≥ 1,
// at most MaxRefs refs sorted by name bytewise with no duplicates, every
// name valid by CheckRefName, every oid 20 or 32 bytes and all of one length.
func (s *SignedRefs) validate() error {
	if s.repo.IsZero() {
		return invalid("zero repository id")
	}
	if s.seq == 0 {
		return invalid("seq 0 (must be at least 1)")
	}
	if len(s.refs) > MaxRefs {
		return fmt.Errorf("%w: %d refs, max %d", ErrTooLarge, len(s.refs), MaxRefs)
	}
	oidLen := -1
	for i, r := range s.refs {
		if err := CheckRefName(r.Name); err != nil {
			return err
		}
		if i > 0 {
			switch prev := s.refs[i-1].Name; {
			case prev == r.Name:
				return invalid("ref %q listed twice", r.Name)
			case prev > r.Name:
				return invalid("refs not sorted: %q before %q", prev, r.Name)
			}
		}
		if len(r.OID) != sha1OIDLen && len(r.OID) != sha256OIDLen {
			return invalid("ref %q: object id of %d bytes, want %d or %d", r.Name, len(r.OID), sha1OIDLen, sha256OIDLen)
		}
		if oidLen >= 0 && len(r.OID) != oidLen {
			return invalid("ref %q: object id of %d bytes, others are %d", r.Name, len(r.OID), oidLen)
		}
		oidLen = len(r.OID)
	}
	return nil
}

// Verify checks the rules of the format (see UnmarshalSignedRefs) and the
// node's signature (ErrBadSignature).
func (s *SignedRefs) Verify() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("verifying signed refs: %w", err)
	}
	sb, err := s.SignedBytes()
	if err != nil {
		return fmt.Errorf("verifying signed refs: %w", err)
	}
	if !s.node.Verify(sb, s.sig) {
		return fmt.Errorf("verifying signed refs of %s for %s: %w", s.node, s.repo, ErrBadSignature)
	}
	return nil
}

func (s *SignedRefs) refsCBOR() []refCBOR {
	out := make([]refCBOR, len(s.refs))
	for i, r := range s.refs {
		out[i] = refCBOR{Name: r.Name, OID: orEmpty(r.OID)}
	}
	return out
}

// SignedBytes returns what the node signs: SignedRefsDomain, one 0x00 byte,
// then the core deterministic CBOR encoding of the map {1 repo, 2 node,
// 3 seq, 4 refs}.
func (s *SignedRefs) SignedBytes() ([]byte, error) {
	enc, err := cborx.Marshal(signedRefsSignedCBOR{
		Repo: s.repo.Multihash(),
		Node: s.node[:],
		Seq:  s.seq,
		Refs: s.refsCBOR(),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding signed part of signed refs: %w", err)
	}
	return domainBytes(SignedRefsDomain, enc), nil
}

// Digest returns SHA-256 of SignedBytes: the value a RepoAnnouncement
// carries as refs_digest.
func (s *SignedRefs) Digest() [sha256.Size]byte {
	sb, err := s.SignedBytes()
	if err != nil {
		// Encoding integers, byte strings and valid text cannot fail.
		panic("wire: " + err.Error())
	}
	return sha256.Sum256(sb)
}

// Marshal returns the canonical CBOR encoding; ErrTooLarge above
// MaxSignedRefsSize.
func (s *SignedRefs) Marshal() ([]byte, error) {
	if len(s.sig) != signatureLen {
		return nil, fmt.Errorf("encoding signed refs: %w: signature of %d bytes, want %d", ErrInvalid, len(s.sig), signatureLen)
	}
	b, err := cborx.Marshal(signedRefsCBOR{
		Repo:      s.repo.Multihash(),
		Node:      s.node[:],
		Seq:       s.seq,
		Refs:      s.refsCBOR(),
		Signature: s.sig,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding signed refs: %w", err)
	}
	if len(b) > MaxSignedRefsSize {
		return nil, fmt.Errorf("encoding signed refs: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxSignedRefsSize)
	}
	return b, nil
}

// Repo returns the repository the refs belong to.
func (s *SignedRefs) Repo() identity.RepoID { return s.repo }

// Node returns the node whose namespace the refs describe (the signer).
func (s *SignedRefs) Node() identity.NodeID { return s.node }

// Seq returns the sequence number (Unix ms when signed; strictly increasing
// per node and repository).
func (s *SignedRefs) Seq() uint64 { return s.seq }

// Refs returns a copy of the refs, sorted by name.
func (s *SignedRefs) Refs() []Ref {
	out := make([]Ref, len(s.refs))
	for i, r := range s.refs {
		out[i] = Ref{Name: r.Name, OID: bytes.Clone(r.OID)}
	}
	return out
}

// CheckRefName reports whether name is acceptable as a ref name from the
// wire: valid UTF-8, at most MaxRefNameLen bytes, starting with "refs/", and
// valid by git check-ref-format: no ASCII control character, space, or any of
// ~ ^ : ? * [ \; no "..", "@{" or "//"; not ending in "/" or "."; no
// component that starts with "." or ends with ".lock". Errors wrap
// ErrInvalid. A name that passes stays inside refs/ when used as a path.
func CheckRefName(name string) error {
	if len(name) > MaxRefNameLen {
		return invalid("ref name of %d bytes, max %d", len(name), MaxRefNameLen)
	}
	bad := func(why string) error { return invalid("ref name %q: %s", name, why) }
	if !strings.HasPrefix(name, "refs/") {
		return bad(`does not start with "refs/"`)
	}
	if !utf8.ValidString(name) {
		return bad("not valid UTF-8")
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c < 0x20 || c == 0x7f:
			return bad("contains a control character")
		case c == ' ':
			return bad("contains a space")
		case strings.IndexByte(`~^:?*[\`, c) >= 0:
			return bad(fmt.Sprintf("contains %q", c))
		}
	}
	switch {
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	case strings.Contains(name, "@{"):
		return bad(`contains "@{"`)
	case strings.Contains(name, "//"):
		return bad(`contains "//"`)
	case strings.HasSuffix(name, "/"):
		return bad(`ends with "/"`)
	case strings.HasSuffix(name, "."):
		return bad(`ends with "."`)
	}
	for comp := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(comp, ".") {
			return bad(`has a component starting with "."`)
		}
		if strings.HasSuffix(comp, ".lock") {
			return bad(`has a component ending with ".lock"`)
		}
	}
	return nil
}
