package wire

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/megaengine/megaengine/protocol/identity"
)

// MaxDocVersions bounds a repository's identity chain: the first document
// and at most MaxDocVersions-1 later versions (each at most
// MaxRepoDocSize), so a chain costs at most 512 KiB to hold or send.
const MaxDocVersions = 64

// DocChange is what a later version sets: the whole new name,
// description, delegates and threshold (unchanged fields copied from the
// current version by the caller).
type DocChange struct {
	Name        string
	Description string
	Delegates   []identity.NodeID
	Threshold   int
}

// Change returns the fields of d, to be changed and passed to Next.
func (d *RepoDoc) Change() DocChange {
	return DocChange{Name: d.name, Description: d.description, Delegates: d.Delegates(), Threshold: d.threshold}
}

// Next makes the unsigned version after d with the fields of c. Everything
// that makes the repository what it is (id, root, creator, creation time,
// default branch) stays; the same change of the same version gives the
// same signed bytes on every node, so delegates who make it independently
// sign one proposal.
func (d *RepoDoc) Next(c DocChange) (*RepoDoc, error) {
	dg := d.Digest()
	n := &RepoDoc{
		repo: d.repo, root: d.root, creator: d.creator, created: d.created, defaultBranch: d.defaultBranch,
		name: c.Name, description: c.Description, delegates: slices.Clone(c.Delegates),
		threshold: c.Threshold, version: d.version + 1, previous: dg[:],
	}
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("making version %d of the repo doc: %w", n.version, err)
	}
	if n.sameContent(d) {
		return nil, invalid("version %d would change nothing", n.version)
	}
	return n, nil
}

func (d *RepoDoc) sameContent(o *RepoDoc) bool {
	return d.name == o.name && d.description == o.description && d.threshold == o.threshold && slices.Equal(d.delegates, o.delegates)
}

// Sign returns a copy of the later version d with key's signature added.
func (d *RepoDoc) Sign(key *identity.Key) (*RepoDoc, error) {
	if d.version == 1 {
		return nil, invalid("the first version is signed by SignRepoDoc")
	}
	sb, err := d.SignedBytes()
	if err != nil {
		return nil, err
	}
	return d.withSignatures([]DocSignature{{Key: key.ID(), Sig: key.Sign(sb)}}), nil
}

// Merge returns d with the signatures of o, a copy of the same version
// (the same signed bytes) that other delegates signed.
func (d *RepoDoc) Merge(o *RepoDoc) (*RepoDoc, error) {
	if d.version == 1 || d.Digest() != o.Digest() {
		return nil, invalid("merging the signatures of two different versions")
	}
	return d.withSignatures(o.sigs), nil
}

func (d *RepoDoc) withSignatures(add []DocSignature) *RepoDoc {
	n := *d
	n.sigs = slices.Clone(d.sigs)
	for _, s := range add {
		if !slices.ContainsFunc(n.sigs, func(h DocSignature) bool { return h.Key == s.Key }) {
			n.sigs = append(n.sigs, s)
		}
	}
	slices.SortFunc(n.sigs, func(a, b DocSignature) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	return &n
}

// CheckNext reports whether next may follow d: it names d's digest, keeps
// what identifies the repository, and every signer is a delegate of d.
// It returns how many more signatures of d's delegates next needs before
// it is a valid version (0: valid).
func (d *RepoDoc) CheckNext(next *RepoDoc) (missing int, err error) {
	dg := d.Digest()
	switch {
	case next.version != d.version+1 || !bytes.Equal(next.previous, dg[:]):
		return 0, invalid("version %d does not follow version %d", next.version, d.version)
	case next.repo != d.repo || next.creator != d.creator || next.created != d.created || next.defaultBranch != d.defaultBranch:
		return 0, invalid("version %d changes what identifies the repository", next.version)
	}
	for _, s := range next.sigs {
		if !d.IsDelegate(s.Key) {
			return 0, invalid("version %d is signed by %s, not a delegate of version %d", next.version, s.Key.Short(), d.version)
		}
	}
	return max(d.threshold-len(next.sigs), 0), nil
}

// DocChain is a repository's verified identity: its first document and
// each later version, every one signed by a threshold of the delegates
// of the one before.
type DocChain struct {
	docs []*RepoDoc
	raws [][]byte
}

// OpenDocChain decodes and verifies a chain: the first document and the
// later versions in order.
func OpenDocChain(first []byte, later [][]byte) (*DocChain, error) {
	if len(later) > MaxDocVersions-1 {
		return nil, fmt.Errorf("decoding repo doc chain: %w: %d versions, max %d", ErrTooLarge, len(later)+1, MaxDocVersions)
	}
	d, err := OpenRepoDoc(first)
	if err != nil {
		return nil, err
	}
	if d.version != 1 {
		return nil, fmt.Errorf("decoding repo doc chain: %w: it starts at version %d", ErrInvalid, d.version)
	}
	c := &DocChain{docs: []*RepoDoc{d}, raws: [][]byte{bytes.Clone(first)}}
	for _, raw := range later {
		next, err := OpenRepoDoc(raw)
		if err != nil {
			return nil, err
		}
		if c, err = c.Append(next); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Append returns the chain with next as its newest version, if next is
// a valid successor of the newest one.
func (c *DocChain) Append(next *RepoDoc) (*DocChain, error) {
	if len(c.docs) >= MaxDocVersions {
		return nil, fmt.Errorf("repo doc chain: %w: already %d versions", ErrTooLarge, MaxDocVersions)
	}
	missing, err := c.Latest().CheckNext(next)
	if err != nil {
		return nil, fmt.Errorf("repo doc chain: %w", err)
	}
	if missing > 0 {
		return nil, fmt.Errorf("repo doc chain: %w: version %d needs %d more signatures of delegates", ErrInvalid, next.version, missing)
	}
	raw, err := next.Marshal()
	if err != nil {
		return nil, err
	}
	return &DocChain{docs: append(slices.Clip(c.docs), next), raws: append(slices.Clip(c.raws), raw)}, nil
}

// Latest is the newest version: the one that says who the delegates are.
func (c *DocChain) Latest() *RepoDoc { return c.docs[len(c.docs)-1] }

// First is the first version, whose digest the chain never changes.
func (c *DocChain) First() *RepoDoc { return c.docs[0] }

// Len is the number of versions.
func (c *DocChain) Len() int { return len(c.docs) }

// FirstRaw is the first version's encoding.
func (c *DocChain) FirstRaw() []byte { return c.raws[0] }

// Later are the encodings of the versions after the first, in order.
func (c *DocChain) Later() [][]byte { return slices.Clone(c.raws[1:]) }

// Extends reports whether o is a prefix of c (o's versions are c's first ones).
func (c *DocChain) Extends(o *DocChain) bool {
	if o.Len() > c.Len() {
		return false
	}
	for i, d := range o.docs {
		if d.Digest() != c.docs[i].Digest() {
			return false
		}
	}
	return true
}
