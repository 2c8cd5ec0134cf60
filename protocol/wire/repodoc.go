package wire

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// RepoDocDomain separates repository identity document signatures.
const RepoDocDomain = "megaengine/1 repo-doc"

// Repository identity document limits.
const (
	MaxRepoNameLen     = 100  // bytes of UTF-8
	MaxDescriptionLen  = 1000 // bytes of UTF-8
	MaxDelegates       = 16
	MaxRepoDocSize     = 8 << 10
	maxBranchNameBytes = 255
)

// RepoDoc is a repository's identity document, signed by its creator: what
// the repository is called, which history it is (the root commit), who made
// it and who may speak for it (the delegates, whose namespaces are
// canonical). Its digest is the doc field of RepoAnnouncements.
//
// Map keys (ONLY APPEND, never renumber); all are required: 1 repo
// (34-byte multihash), 2 root (20- or 32-byte commit id), 3 creator (32
// bytes), 4 name, 5 description, 6 default_branch (a branch name such as
// "main"), 7 delegates (array of 32-byte keys, the creator first), 8 created
// (Unix ms), 9 signature (64 bytes).
//
// A RepoDoc is immutable; values from SignRepoDoc and OpenRepoDoc are verified.
type RepoDoc struct {
	repo          identity.RepoID
	root          []byte
	creator       identity.NodeID
	name          string
	description   string
	defaultBranch string
	delegates     []identity.NodeID
	created       uint64
	sig           []byte
}

type repoDocCBOR struct {
	Repo          []byte   `cbor:"1,keyasint"`
	Root          []byte   `cbor:"2,keyasint"`
	Creator       []byte   `cbor:"3,keyasint"`
	Name          string   `cbor:"4,keyasint"`
	Description   string   `cbor:"5,keyasint"`
	DefaultBranch string   `cbor:"6,keyasint"`
	Delegates     [][]byte `cbor:"7,keyasint"`
	Created       uint64   `cbor:"8,keyasint"`
	Signature     []byte   `cbor:"9,keyasint,omitempty"`
}

// RepoDocFields are the inputs of SignRepoDoc.
type RepoDocFields struct {
	Root          []byte // binary id of the first-parent root commit
	Name          string
	Description   string
	DefaultBranch string
	Created       uint64            // Unix ms
	Delegates     []identity.NodeID // besides the creator, who is always the first
}

// SignRepoDoc makes the identity document of the repository that key
// creates from the history rooted at f.Root; its id is
// identity.NewRepoID(f.Root, key.ID()).
func SignRepoDoc(key *identity.Key, f RepoDocFields) (*RepoDoc, error) {
	repo, err := identity.NewRepoID(f.Root, key.ID())
	if err != nil {
		return nil, fmt.Errorf("signing repo doc: %w: %w", ErrInvalid, err)
	}
	d := &RepoDoc{
		repo: repo, root: bytes.Clone(f.Root), creator: key.ID(),
		name: f.Name, description: f.Description, defaultBranch: f.DefaultBranch,
		delegates: []identity.NodeID{key.ID()}, created: f.Created,
	}
	for _, del := range f.Delegates {
		if del != key.ID() {
			d.delegates = append(d.delegates, del)
		}
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("signing repo doc: %w", err)
	}
	sb, err := d.SignedBytes()
	if err != nil {
		return nil, err
	}
	d.sig = key.Sign(sb)
	return d, nil
}

func (d *RepoDoc) wire(withSig bool) repoDocCBOR {
	w := repoDocCBOR{
		Repo: d.repo.Multihash(), Root: d.root, Creator: d.creator[:],
		Name: d.name, Description: d.description, DefaultBranch: d.defaultBranch,
		Delegates: make([][]byte, len(d.delegates)), Created: d.created,
	}
	for i, del := range d.delegates {
		w.Delegates[i] = bytes.Clone(del[:])
	}
	if withSig {
		w.Signature = d.sig
	}
	return w
}

// SignedBytes returns RepoDocDomain ‖ 0x00 ‖ canonical CBOR of keys 1–8.
func (d *RepoDoc) SignedBytes() ([]byte, error) {
	b, err := cborx.Marshal(d.wire(false))
	if err != nil {
		return nil, fmt.Errorf("encoding repo doc: %w", err)
	}
	return domainBytes(RepoDocDomain, b), nil
}

// Digest is SHA-256 of the signed bytes.
func (d *RepoDoc) Digest() [sha256.Size]byte {
	sb, _ := d.SignedBytes()
	return sha256.Sum256(sb)
}

// Marshal returns the canonical encoding, signature included.
func (d *RepoDoc) Marshal() ([]byte, error) { return cborx.Marshal(d.wire(true)) }

// OpenRepoDoc decodes a document from the network and verifies it: size,
// strict canonical decoding, field rules, that the repository id is the
// hash of root and creator, and the creator's signature.
func OpenRepoDoc(b []byte) (*RepoDoc, error) {
	if len(b) > MaxRepoDocSize {
		return nil, fmt.Errorf("decoding repo doc: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxRepoDocSize)
	}
	var w repoDocCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("repo doc", err)
	}
	repo, err := decodeRepoID(w.Repo)
	if err != nil {
		return nil, fmt.Errorf("decoding repo doc: %w", err)
	}
	creator, err := identity.NodeIDFromPublicKey(w.Creator)
	if err != nil {
		return nil, fmt.Errorf("decoding repo doc: %w: creator: %w", ErrMalformed, err)
	}
	if len(w.Delegates) > MaxDelegates {
		return nil, fmt.Errorf("decoding repo doc: %w: %d delegates, max %d", ErrTooLarge, len(w.Delegates), MaxDelegates)
	}
	d := &RepoDoc{
		repo: repo, root: w.Root, creator: creator, name: w.Name, description: w.Description,
		defaultBranch: w.DefaultBranch, created: w.Created, sig: w.Signature,
	}
	for _, raw := range w.Delegates {
		del, err := identity.NodeIDFromPublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("decoding repo doc: %w: delegate: %w", ErrMalformed, err)
		}
		d.delegates = append(d.delegates, del)
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("decoding repo doc: %w", err)
	}
	if want, err := identity.NewRepoID(d.root, d.creator); err != nil || want != d.repo {
		return nil, fmt.Errorf("decoding repo doc: %w: repository id is not the hash of its root commit and creator", ErrInvalid)
	}
	sb, err := d.SignedBytes()
	if err != nil {
		return nil, err
	}
	if !d.creator.Verify(sb, d.sig) {
		return nil, fmt.Errorf("verifying repo doc of %s: %w", d.repo, ErrBadSignature)
	}
	return d, nil
}

func (d *RepoDoc) validate() error {
	if len(d.root) != sha1OIDLen && len(d.root) != sha256OIDLen {
		return invalid("root commit id of %d bytes", len(d.root))
	}
	if err := CheckRepoName(d.name); err != nil {
		return err
	}
	if err := CheckDescription(d.description); err != nil {
		return err
	}
	switch {
	case len(d.defaultBranch) > maxBranchNameBytes || CheckRefName("refs/heads/"+d.defaultBranch) != nil || d.defaultBranch == "":
		return invalid("default branch %q is not a valid branch name", d.defaultBranch)
	case len(d.delegates) == 0 || d.delegates[0] != d.creator:
		return invalid("the creator must be the first delegate")
	case len(d.delegates) > MaxDelegates:
		return invalid("%d delegates, max %d", len(d.delegates), MaxDelegates)
	case d.sig != nil && len(d.sig) != signatureLen:
		return fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(d.sig))
	}
	seen := map[identity.NodeID]bool{}
	for _, del := range d.delegates {
		if seen[del] {
			return invalid("delegate %s listed twice", del)
		}
		seen[del] = true
	}
	return nil
}

// CheckRepoName reports whether name can be a repository's name in its
// identity document: 1 to MaxRepoNameLen bytes of UTF-8 without control
// characters. Errors wrap ErrInvalid. The control API (rpc) checks names
// with it before the daemon signs anything.
func CheckRepoName(name string) error {
	if name == "" || !validText(name, MaxRepoNameLen, false) {
		return invalid("name must be 1-%d bytes of printable UTF-8", MaxRepoNameLen)
	}
	return nil
}

// CheckDescription reports whether desc can be a repository's description
// in its identity document: at most MaxDescriptionLen bytes of UTF-8 whose
// only control characters are newline and tab; it may be empty. Errors wrap
// ErrInvalid.
func CheckDescription(desc string) error {
	if !validText(desc, MaxDescriptionLen, true) {
		return invalid("description must be at most %d bytes of UTF-8 without control characters other than newline and tab", MaxDescriptionLen)
	}
	return nil
}

// validText reports whether s is at most max bytes of UTF-8 without control
// characters (Unicode Cc), newline and tab allowed if multiline.
func validText(s string, max int, multiline bool) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return false
		}
	}
	return true
}

// Repo is the repository id.
func (d *RepoDoc) Repo() identity.RepoID { return d.repo }

// Root is the binary id of the root commit.
func (d *RepoDoc) Root() []byte { return bytes.Clone(d.root) }

// Creator is the node that created the repository.
func (d *RepoDoc) Creator() identity.NodeID { return d.creator }

// Name is the repository's name.
func (d *RepoDoc) Name() string { return d.name }

// Description is the repository's description.
func (d *RepoDoc) Description() string { return d.description }

// DefaultBranch is the branch name (without refs/heads/) clones check out.
func (d *RepoDoc) DefaultBranch() string { return d.defaultBranch }

// Delegates are the nodes whose namespaces are canonical, the creator first.
func (d *RepoDoc) Delegates() []identity.NodeID {
	return append([]identity.NodeID(nil), d.delegates...)
}

// Created is the creation time in Unix ms.
func (d *RepoDoc) Created() uint64 { return d.created }

// IsDelegate reports whether id is a delegate.
func (d *RepoDoc) IsDelegate(id identity.NodeID) bool {
	for _, del := range d.delegates {
		if del == id {
			return true
		}
	}
	return false
}
