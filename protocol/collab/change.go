package collab

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Change is one signed step in the history of a collaborative object
// (spec/collab.md §2). In git it is one commit whose tree holds the blob
// BlobName (Marshal) and whose parents are the commits of Parents.
//
// A Change is immutable and always verified: the only ways to get one are
// SignChange, NewChange and ParseChange, which check every rule that does
// not need other changes (limits, shape, signature). The rules that relate
// a change to its parents (clocks) are checked by the fold.
type Change struct {
	typ       ObjectType
	object    ObjectID // zero in a root change
	parents   []ChangeID
	actions   []Action
	author    identity.NodeID
	clock     uint64
	timestamp uint64
	nonce     [NonceLen]byte

	id  ChangeID
	raw []byte // the blob
}

// Fields are the inputs of SignChange: everything a change says except
// its author (the signing key).
type Fields struct {
	Type      ObjectType
	Object    ObjectID   // zero for a root change
	Parents   []ChangeID // sorted and deduplicated by SignChange
	Actions   []Action   // lists inside are sorted and deduplicated
	Clock     uint64
	Timestamp uint64 // Unix ms
	Nonce     [NonceLen]byte
}

// SignChange builds and signs a change by key with exactly the given
// fields, after sorting its lists. Most callers want NewChange, which
// picks the clock, timestamp and nonce.
func SignChange(key *identity.Key, f Fields) (*Change, error) {
	if key == nil {
		return nil, fmt.Errorf("signing change: %w: nil key", ErrInvalid)
	}
	c := &Change{
		typ: f.Type, object: f.Object, author: key.ID(),
		clock: f.Clock, timestamp: f.Timestamp, nonce: f.Nonce,
	}
	if len(f.Parents) > 0 {
		c.parents = slices.Clone(f.Parents)
		slices.SortFunc(c.parents, ChangeID.Compare)
		c.parents = slices.Compact(c.parents)
	}
	for _, a := range f.Actions {
		if a == nil {
			return nil, fmt.Errorf("signing change: %w: nil action", ErrInvalid)
		}
		c.actions = append(c.actions, a.normalize())
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("signing change: %w", err)
	}
	payload, err := c.encodePayload()
	if err != nil {
		return nil, fmt.Errorf("signing change: %w", err)
	}
	signed := signedBytes(payload)
	raw, err := cborx.Marshal(blobCBOR{Change: payload, Signature: key.Sign(signed)})
	if err != nil {
		return nil, fmt.Errorf("signing change: encoding: %w", err)
	}
	if len(raw) > MaxChangeSize {
		return nil, fmt.Errorf("signing change: %w", tooLarge("%d bytes, max %d", len(raw), MaxChangeSize))
	}
	c.raw, c.id = raw, sha256.Sum256(signed)
	return c, nil
}

// NewChange builds a change by key on top of parents (the heads of the
// object the author has seen; none for a root change, whose object is
// zero): clock one more than the largest parent clock (1 for a root), the
// timestamp of now, and a random nonce.
func NewChange(key *identity.Key, typ ObjectType, object ObjectID, parents []*Change, actions []Action, now time.Time) (*Change, error) {
	f := Fields{Type: typ, Object: object, Actions: actions, Clock: 1}
	for _, p := range parents {
		if p.typ != typ || p.ObjectID() != object {
			return nil, fmt.Errorf("new change: %w: parent %s belongs to %s %s, not %s %s",
				ErrWrongObject, p.id.Short(), p.typ, p.ObjectID().Short(), typ, object.Short())
		}
		f.Parents = append(f.Parents, p.id)
		f.Clock = max(f.Clock, p.clock+1)
	}
	switch {
	case now.Before(time.UnixMilli(0)):
		now = time.UnixMilli(0)
	case now.After(maxTime):
		now = maxTime
	}
	f.Timestamp = uint64(now.UnixMilli())
	if _, err := rand.Read(f.Nonce[:]); err != nil {
		return nil, fmt.Errorf("new change: nonce: %w", err)
	}
	return SignChange(key, f)
}

// ParseChange decodes and verifies a change blob from the network or from
// git: the size first, then strict canonical decoding of the blob and of
// the payload, then the rules of §2 and §4 of spec/collab.md, then the
// author's signature over the exact payload bytes received.
func ParseChange(raw []byte) (*Change, error) {
	if len(raw) > MaxChangeSize {
		return nil, fmt.Errorf("decoding change: %w", tooLarge("%d bytes, max %d", len(raw), MaxChangeSize))
	}
	var blob blobCBOR
	if err := cborx.UnmarshalCanonical(raw, &blob); err != nil {
		return nil, decodeError("change", err)
	}
	if len(blob.Signature) != 64 {
		return nil, fmt.Errorf("decoding change: %w: signature of %d bytes, want 64", ErrMalformed, len(blob.Signature))
	}
	c, err := decodePayload(blob.Change)
	if err != nil {
		return nil, fmt.Errorf("decoding change: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("decoding change: %w", err)
	}
	again, err := c.encodePayload()
	if err != nil || !bytes.Equal(again, blob.Change) {
		return nil, fmt.Errorf("decoding change: %w: %w (every key of each structure present, no others, core deterministic encoding)", ErrMalformed, cborx.ErrNonCanonical)
	}
	signed := signedBytes(blob.Change)
	if !c.author.Verify(signed, blob.Signature) {
		return nil, fmt.Errorf("verifying change by %s: %w", c.author, ErrBadSignature)
	}
	c.raw, c.id = bytes.Clone(raw), sha256.Sum256(signed)
	return c, nil
}

func decodePayload(b []byte) (*Change, error) {
	var w changeWire
	if err := cborx.Unmarshal(b, &w); err != nil {
		return nil, decodeError("change payload", err)
	}
	if err := ObjectType(w.Type).check(); err != nil {
		return nil, err
	}
	if len(w.Actions) > MaxActions {
		return nil, tooLarge("%d actions, max %d", len(w.Actions), MaxActions)
	}
	if len(w.Parents) > MaxParents {
		return nil, tooLarge("%d parents, max %d", len(w.Parents), MaxParents)
	}
	author, err := identity.NodeIDFromPublicKey(w.Author)
	if err != nil {
		return nil, fmt.Errorf("%w: author: %w", ErrMalformed, err)
	}
	if len(w.Nonce) != NonceLen {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrMalformed, len(w.Nonce), NonceLen)
	}
	c := &Change{typ: ObjectType(w.Type), author: author, clock: w.Clock, timestamp: w.Timestamp}
	copy(c.nonce[:], w.Nonce)
	if c.object, err = idFromBytes("object", w.Object, true); err != nil {
		return nil, err
	}
	for _, p := range w.Parents {
		id, err := idFromBytes("parent", p, false)
		if err != nil {
			return nil, err
		}
		c.parents = append(c.parents, id)
	}
	for i := range w.Actions {
		a, err := decodeAction(&w.Actions[i])
		if err != nil {
			return nil, fmt.Errorf("action %d: %w", i, err)
		}
		c.actions = append(c.actions, a)
	}
	return c, nil
}

// validate checks every rule that needs no other change.
func (c *Change) validate() error {
	if err := c.typ.check(); err != nil {
		return err
	}
	switch {
	case len(c.actions) == 0:
		return invalid("no actions")
	case len(c.actions) > MaxActions:
		return tooLarge("%d actions, max %d", len(c.actions), MaxActions)
	case len(c.parents) > MaxParents:
		return tooLarge("%d parents, max %d", len(c.parents), MaxParents)
	case c.clock == 0:
		return invalid("clock 0 (must be at least 1)")
	case c.timestamp > MaxTimestamp:
		return invalid("timestamp %d above %d", c.timestamp, uint64(MaxTimestamp))
	}
	for i := 1; i < len(c.parents); i++ {
		if c.parents[i-1].Compare(c.parents[i]) >= 0 {
			return invalid("parents not strictly ascending")
		}
	}
	if err := c.validateShape(); err != nil {
		return err
	}
	for i, a := range c.actions {
		if !allowed(c.typ, a.Type()) {
			return fmt.Errorf("action %d: %w: %s takes no %q", i, ErrUnknownAction, c.typ, a.Type())
		}
		if err := a.validate(); err != nil {
			return fmt.Errorf("action %d (%s): %w", i, a.Type(), err)
		}
	}
	return nil
}

// validateShape: a root change (empty object) has no parents, a clock of
// at most MaxClockJump and exactly one action, open; any other change has
// parents, no open and at most one comment.
func (c *Change) validateShape() error {
	if c.object.IsZero() {
		switch {
		case len(c.parents) > 0:
			return invalid("root change (empty object) has parents")
		case c.clock > MaxClockJump:
			return fmt.Errorf("%w: %w: root clock %d above %d", ErrInvalid, ErrClockJump, c.clock, MaxClockJump)
		case len(c.actions) != 1 || c.actions[0].Type() != rootAction(c.typ):
			return invalid("a root change of a %s holds exactly one action, %s", c.typ, rootAction(c.typ))
		}
		return nil
	}
	if len(c.parents) == 0 {
		return invalid("change of object %s has no parents", c.object.Short())
	}
	comments, revisions := 0, 0
	for _, a := range c.actions {
		switch a.Type() {
		case ActionOpen, ActionOpenPatch:
			return invalid("%s outside the root change", a.Type())
		case ActionComment, ActionCommentRevision:
			if comments++; comments > 1 {
				return invalid("more than one comment in a change")
			}
		case ActionRevise:
			if revisions++; revisions > 1 {
				return invalid("more than one revise in a change")
			}
		}
	}
	return nil
}

func (c *Change) encodePayload() ([]byte, error) {
	w := changeCBOR{
		Type: string(c.typ), Object: optionalID(c.object), Parents: make([][]byte, len(c.parents)),
		Actions: make([]any, len(c.actions)), Author: c.author[:],
		Clock: c.clock, Timestamp: c.timestamp, Nonce: c.nonce[:],
	}
	for i := range c.parents {
		w.Parents[i] = c.parents[i][:]
	}
	for i, a := range c.actions {
		w.Actions[i] = a.encode()
	}
	return cborx.Marshal(w)
}

// signedBytes returns ChangeDomain ‖ 0x00 ‖ payload.
func signedBytes(payload []byte) []byte {
	b := make([]byte, 0, len(ChangeDomain)+1+len(payload))
	b = append(b, ChangeDomain...)
	b = append(b, 0)
	return append(b, payload...)
}

// ID returns the change id: SHA-256 of the signed bytes.
func (c *Change) ID() ChangeID { return c.id }

// Marshal returns the blob (a fresh copy): the bytes ParseChange accepted
// or SignChange produced, to be stored as BlobName.
func (c *Change) Marshal() []byte { return bytes.Clone(c.raw) }

// Type returns the object type.
func (c *Change) Type() ObjectType { return c.typ }

// Object returns the object id as written in the change: zero in a root
// change. ObjectID is usually what callers want.
func (c *Change) Object() ObjectID { return c.object }

// ObjectID returns the id of the object the change belongs to: its own id
// for a root change.
func (c *Change) ObjectID() ObjectID {
	if c.object.IsZero() {
		return c.id
	}
	return c.object
}

// IsRoot reports whether c is the first change of its object.
func (c *Change) IsRoot() bool { return c.object.IsZero() }

// Parents returns the parents' change ids, ascending (a fresh copy).
func (c *Change) Parents() []ChangeID { return slices.Clone(c.parents) }

// Actions returns the actions (the slice is fresh; the actions are shared
// and must not be modified).
func (c *Change) Actions() []Action { return slices.Clone(c.actions) }

// Author returns the key that signed the change.
func (c *Change) Author() identity.NodeID { return c.author }

// Clock returns the Lamport clock.
func (c *Change) Clock() uint64 { return c.clock }

// Timestamp returns the author's time of the change, in Unix ms. It is
// informational: the fold orders by clock, never by timestamp.
func (c *Change) Timestamp() uint64 { return c.timestamp }

// Nonce returns the random nonce that makes otherwise equal changes
// distinct.
func (c *Change) Nonce() [NonceLen]byte { return c.nonce }
