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

// RepoDoc is one version of a repository's identity document: what the
// repository is called, which history it is (the root commit), who made it
// and who may speak for it (the delegates, whose namespaces are canonical,
// and the threshold of them that must agree). Its digest is the doc field
// of RepoAnnouncements. The first version is signed by the creator; each
// later version names the digest of the one before and is signed by a
// threshold of that version's delegates (spec/repo.md §2).
//
// Map keys (ONLY APPEND, never renumber): 1 repo (34-byte multihash), 2
// root (20- or 32-byte commit id), 3 creator (32 bytes), 4 name, 5
// description, 6 default_branch (a branch name such as "main"), 7
// delegates (array of 32-byte keys; the creator first in the first
// version), 8 created (Unix ms), 9 signature (64 bytes; the first version
// only), 10 version (uint >= 2; absent in the first), 11 threshold (uint
// >= 2; absent means 1), 12 previous (32 bytes, the digest of the version
// before; later versions only), 13 signatures (later versions only: array
// of {1 key, 2 signature}, sorted by key, keys distinct).
//
// A RepoDoc is immutable; values from SignRepoDoc and OpenRepoDoc have
// valid signatures, and a DocChain says which versions are authorized.
type RepoDoc struct {
	repo          identity.RepoID
	root          []byte
	creator       identity.NodeID
	name          string
	description   string
	defaultBranch string
	delegates     []identity.NodeID
	created       uint64
	version       uint64
	threshold     int
	previous      []byte
	sig           []byte         // the first version's, by the creator
	sigs          []DocSignature // a later version's, sorted by key
}

// DocSignature is one delegate's signature of a later document version.
type DocSignature struct {
	Key identity.NodeID
	Sig []byte
}

type repoDocCBOR struct {
	Repo          []byte       `cbor:"1,keyasint"`
	Root          []byte       `cbor:"2,keyasint"`
	Creator       []byte       `cbor:"3,keyasint"`
	Name          string       `cbor:"4,keyasint"`
	Description   string       `cbor:"5,keyasint"`
	DefaultBranch string       `cbor:"6,keyasint"`
	Delegates     [][]byte     `cbor:"7,keyasint"`
	Created       uint64       `cbor:"8,keyasint"`
	Signature     []byte       `cbor:"9,keyasint,omitempty"`
	Version       uint64       `cbor:"10,keyasint,omitempty"`
	Threshold     uint64       `cbor:"11,keyasint,omitempty"`
	Previous      []byte       `cbor:"12,keyasint,omitempty"`
	Signatures    []docSigCBOR `cbor:"13,keyasint,omitempty"`
}

type docSigCBOR struct {
	Key       []byte `cbor:"1,keyasint"`
	Signature []byte `cbor:"2,keyasint"`
}

// RepoDocFields are the inputs of SignRepoDoc.
type RepoDocFields struct {
	Root          []byte // binary id of the first-parent root commit
	Name          string
	Description   string
	DefaultBranch string
	Created       uint64            // Unix ms
	Delegates     []identity.NodeID // besides the creator, who is always the first
	Threshold     int               // 0 means 1
}

// SignRepoDoc makes the first identity document of the repository that
// key creates from the history rooted at f.Root; its id is
// identity.NewRepoID(f.Root, key.ID()).
func SignRepoDoc(key *identity.Key, f RepoDocFields) (*RepoDoc, error) {
	repo, err := identity.NewRepoID(f.Root, key.ID())
	if err != nil {
		return nil, fmt.Errorf("signing repo doc: %w: %w", ErrInvalid, err)
	}
	d := &RepoDoc{
		repo: repo, root: bytes.Clone(f.Root), creator: key.ID(),
		name: f.Name, description: f.Description, defaultBranch: f.DefaultBranch,
		delegates: []identity.NodeID{key.ID()}, created: f.Created, version: 1, threshold: max(f.Threshold, 1),
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
		Delegates: make([][]byte, len(d.delegates)), Created: d.created, Previous: d.previous,
	}
	for i, del := range d.delegates {
		w.Delegates[i] = bytes.Clone(del[:])
	}
	if d.version > 1 {
		w.Version = d.version
	}
	if d.threshold > 1 {
		w.Threshold = uint64(d.threshold)
	}
	if withSig {
		w.Signature = d.sig
		for _, s := range d.sigs {
			w.Signatures = append(w.Signatures, docSigCBOR{Key: s.Key.PublicKey(), Signature: s.Sig})
		}
	}
	return w
}

// SignedBytes returns RepoDocDomain ‖ 0x00 ‖ canonical CBOR of every key
// but the signatures (9 and 13).
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

// Marshal returns the canonical encoding, signatures included.
func (d *RepoDoc) Marshal() ([]byte, error) { return cborx.Marshal(d.wire(true)) }

// OpenRepoDoc decodes a document version from the network and checks it
// on its own: size, strict canonical decoding, field rules, that the
// repository id is the hash of root and creator, and its signatures (the
// creator's on a first version; on a later one, at least one and each
// valid). Whether a later version's signers may speak for the repository
// is the chain's question (DocChain.Append, RepoDoc.CheckNext).
func OpenRepoDoc(b []byte) (*RepoDoc, error) {
	if len(b) > MaxRepoDocSize {
		return nil, fmt.Errorf("decoding repo doc: %w: %d bytes, max %d", ErrTooLarge, len(b), MaxRepoDocSize)
	}
	var w repoDocCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("repo doc", err)
	}
	d, err := fromWire(&w)
	if err != nil {
		return nil, fmt.Errorf("decoding repo doc: %w", err)
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("decoding repo doc: %w", err)
	}
	if want, err := identity.NewRepoID(d.root, d.creator); err != nil || want != d.repo {
		return nil, fmt.Errorf("decoding repo doc: %w: repository id is not the hash of its root commit and creator", ErrInvalid)
	}
	if err := d.verifySignatures(); err != nil {
		return nil, fmt.Errorf("verifying repo doc of %s: %w", d.repo, err)
	}
	return d, nil
}

// StoredRepoDocName reads the name of a document version this node
// verified before it stored it, without verifying it again (log lines ask
// for it often).
func StoredRepoDocName(b []byte) (string, error) {
	var w repoDocCBOR
	if err := cborx.Unmarshal(b, &w); err != nil {
		return "", decodeError("repo doc", err)
	}
	return w.Name, nil
}

func fromWire(w *repoDocCBOR) (*RepoDoc, error) {
	repo, err := decodeRepoID(w.Repo)
	if err != nil {
		return nil, err
	}
	creator, err := identity.NodeIDFromPublicKey(w.Creator)
	if err != nil {
		return nil, fmt.Errorf("%w: creator: %w", ErrMalformed, err)
	}
	if len(w.Delegates) > MaxDelegates || len(w.Signatures) > MaxDelegates {
		return nil, fmt.Errorf("%w: %d delegates and %d signatures, max %d", ErrTooLarge, len(w.Delegates), len(w.Signatures), MaxDelegates)
	}
	if w.Version == 1 || w.Threshold == 1 || w.Threshold > MaxDelegates {
		return nil, invalid("version %d, threshold %d: 1 is written by leaving the key out", w.Version, w.Threshold)
	}
	d := &RepoDoc{
		repo: repo, root: w.Root, creator: creator, name: w.Name, description: w.Description,
		defaultBranch: w.DefaultBranch, created: w.Created, sig: w.Signature,
		version: max(w.Version, 1), threshold: int(max(w.Threshold, 1)), previous: w.Previous,
	}
	if d.delegates, err = nodeIDs(w.Delegates, "delegate"); err != nil {
		return nil, err
	}
	for _, s := range w.Signatures {
		key, err := identity.NodeIDFromPublicKey(s.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: signer: %w", ErrMalformed, err)
		}
		d.sigs = append(d.sigs, DocSignature{Key: key, Sig: s.Signature})
	}
	return d, nil
}

func nodeIDs(raws [][]byte, what string) ([]identity.NodeID, error) {
	out := make([]identity.NodeID, 0, len(raws))
	for _, raw := range raws {
		id, err := identity.NodeIDFromPublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
		}
		out = append(out, id)
	}
	return out, nil
}

// verifySignatures checks the signatures a version carries, not whether
// the signers may sign it.
func (d *RepoDoc) verifySignatures() error {
	sb, err := d.SignedBytes()
	if err != nil {
		return err
	}
	if d.version == 1 {
		if !d.creator.Verify(sb, d.sig) {
			return ErrBadSignature
		}
		return nil
	}
	if len(d.sigs) == 0 {
		return fmt.Errorf("%w: a later version without signatures", ErrBadSignature)
	}
	for _, s := range d.sigs {
		if !s.Key.Verify(sb, s.Sig) {
			return fmt.Errorf("%w: by %s", ErrBadSignature, s.Key.Short())
		}
	}
	return nil
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
	case len(d.delegates) == 0:
		return invalid("no delegates")
	case d.version == 1 && d.delegates[0] != d.creator:
		return invalid("the creator must be the first delegate of the first version")
	case len(d.delegates) > MaxDelegates:
		return invalid("%d delegates, max %d", len(d.delegates), MaxDelegates)
	case d.threshold < 1 || d.threshold > len(d.delegates):
		return invalid("threshold %d of %d delegates", d.threshold, len(d.delegates))
	}
	if err := d.validateSignatures(); err != nil {
		return err
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

// validateSignatures checks where the signatures are and their shape: a
// first version has the creator's (key 9) and no previous; a later one
// names the previous digest and has a sorted list without repeats.
func (d *RepoDoc) validateSignatures() error {
	if d.version == 1 {
		switch {
		case d.previous != nil || d.sigs != nil:
			return invalid("a first version has neither a previous digest nor a signature list")
		case d.sig != nil && len(d.sig) != signatureLen:
			return fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(d.sig))
		}
		return nil
	}
	switch {
	case len(d.previous) != sha256.Size:
		return invalid("a later version names the previous digest (32 bytes), not %d bytes", len(d.previous))
	case d.sig != nil:
		return invalid("a later version is signed in its signature list (key 13), not key 9")
	}
	for i, s := range d.sigs {
		if len(s.Sig) != signatureLen {
			return fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(s.Sig))
		}
		if i > 0 && bytes.Compare(d.sigs[i-1].Key[:], s.Key[:]) >= 0 {
			return invalid("signatures not sorted by key, or a key twice")
		}
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

// Version is 1 for the first document, and one more for each later one.
func (d *RepoDoc) Version() uint64 { return d.version }

// Threshold is how many delegates must sign the next version, and agree
// on the canonical branch.
func (d *RepoDoc) Threshold() int { return d.threshold }

// Signers are the keys that signed a later version (the creator for the
// first).
func (d *RepoDoc) Signers() []identity.NodeID {
	if d.version == 1 {
		return []identity.NodeID{d.creator}
	}
	out := make([]identity.NodeID, len(d.sigs))
	for i, s := range d.sigs {
		out[i] = s.Key
	}
	return out
}
