package wire

import (
	"crypto/sha256"
	"fmt"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// RepoAnnouncement (type 2) tells the network that the origin holds a
// repository, and which of its own signed refs it has for it. A newer
// RefsSeq than the one on record makes receivers fetch. Its subject is the
// repository id.
//
// Map keys (ONLY APPEND, never renumber): 1 repo (34-byte multihash),
// 2 doc (32 bytes), 3 refs_seq (uint), 4 refs_digest (32 bytes) are
// required; 5 withdrawn (bool, written only when true: the origin no longer
// holds the repository — this newer announcement replaces its last one);
// 6 canonical_seq (uint, written only when not 0: the seq of the creator's
// signed refs the origin holds, so others can tell which holders are in sync);
// 7 name and 8 description (text, written only when not empty: copied from
// the identity document whose digest is key 2, so a node that does not hold
// it yet can name the repository — a hint until the document verifies).
type RepoAnnouncement struct {
	// Repo is the repository; the zero id is invalid.
	Repo identity.RepoID
	// Doc is the SHA-256 digest of the repository's signed identity
	// document. All zero until that document is defined.
	Doc [sha256.Size]byte
	// RefsSeq is the Seq of the origin's signed refs for Repo, or 0 if the
	// origin holds the repository without refs of its own (a replica).
	RefsSeq uint64
	// RefsDigest is the Digest of those signed refs; all zero if and only if
	// RefsSeq is 0.
	RefsDigest [sha256.Size]byte
	// Withdrawn says the origin stopped holding the repository.
	Withdrawn bool
	// CanonicalSeq is the seq of the creator's signed refs the origin
	// holds (0: none, or not said).
	CanonicalSeq uint64
	// Name and Description are the identity document's, as hints.
	Name, Description string
}

type repoAnnouncementCBOR struct {
	Repo         []byte `cbor:"1,keyasint"`
	Doc          []byte `cbor:"2,keyasint"`
	RefsSeq      uint64 `cbor:"3,keyasint"`
	RefsDigest   []byte `cbor:"4,keyasint"`
	Withdrawn    bool   `cbor:"5,keyasint,omitempty"`
	CanonicalSeq uint64 `cbor:"6,keyasint,omitempty"`
	Name         string `cbor:"7,keyasint,omitempty"`
	Description  string `cbor:"8,keyasint,omitempty"`
}

// Type returns TypeRepoAnnouncement.
func (*RepoAnnouncement) Type() MsgType { return TypeRepoAnnouncement }

// Subject returns the repository id ("did:repo:z…").
func (a *RepoAnnouncement) Subject() string { return a.Repo.String() }

// Validate checks that Repo is set and that RefsSeq and RefsDigest are both
// zero or both set.
func (a *RepoAnnouncement) Validate() error {
	if a == nil {
		return invalid("nil RepoAnnouncement")
	}
	if a.Repo.IsZero() {
		return invalid("zero repository id")
	}
	if zero := a.RefsDigest == [sha256.Size]byte{}; zero != (a.RefsSeq == 0) {
		return invalid("refs_seq %d with a zero refs_digest=%v: both or neither must be zero", a.RefsSeq, zero)
	}
	if a.Name != "" {
		if err := CheckRepoName(a.Name); err != nil {
			return err
		}
	}
	return CheckDescription(a.Description)
}

func (a *RepoAnnouncement) encode() ([]byte, error) {
	return cborx.Marshal(repoAnnouncementCBOR{
		Repo:         a.Repo.Multihash(),
		Doc:          a.Doc[:],
		RefsSeq:      a.RefsSeq,
		RefsDigest:   a.RefsDigest[:],
		Withdrawn:    a.Withdrawn,
		CanonicalSeq: a.CanonicalSeq,
		Name:         a.Name,
		Description:  a.Description,
	})
}

func decodeRepoAnnouncement(b []byte) (*RepoAnnouncement, error) {
	var w repoAnnouncementCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("RepoAnnouncement", err)
	}
	repo, err := decodeRepoID(w.Repo)
	if err != nil {
		return nil, fmt.Errorf("decoding RepoAnnouncement: %w", err)
	}
	a := &RepoAnnouncement{Repo: repo, RefsSeq: w.RefsSeq, Withdrawn: w.Withdrawn, CanonicalSeq: w.CanonicalSeq,
		Name: w.Name, Description: w.Description}
	if err := decodeFixed(a.Doc[:], w.Doc, "doc"); err != nil {
		return nil, fmt.Errorf("decoding RepoAnnouncement: %w", err)
	}
	if err := decodeFixed(a.RefsDigest[:], w.RefsDigest, "refs_digest"); err != nil {
		return nil, fmt.Errorf("decoding RepoAnnouncement: %w", err)
	}
	return a, nil
}

// decodeRepoID parses the 34-byte multihash form of a repository id.
func decodeRepoID(b []byte) (identity.RepoID, error) {
	if len(b) != multihashLen {
		return identity.RepoID{}, fmt.Errorf("%w: repo of %d bytes, want %d", ErrMalformed, len(b), multihashLen)
	}
	id, err := identity.RepoIDFromMultihash(b)
	if err != nil {
		return identity.RepoID{}, fmt.Errorf("%w: repo: %w", ErrMalformed, err)
	}
	return id, nil
}

// decodeFixed copies src into dst, which must have the same length.
func decodeFixed(dst, src []byte, what string) error {
	if len(src) != len(dst) {
		return fmt.Errorf("%w: %s of %d bytes, want %d", ErrMalformed, what, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}
