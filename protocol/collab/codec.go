package collab

import (
	"fmt"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Action map keys (ONLY APPEND, never renumber). One numbering serves all
// action types; spec/collab.md §4 lists which keys each type has. Every
// key of a type is required, except edit's title and body, of which at
// least one is present.
//
//	1 type (text)        2 title (text)         3 body (text)
//	4 labels (text[])    5 add (text[])         6 remove (text[])
//	7 add (bytes[])      8 remove (bytes[])     9 comment (bytes)
//	10 reply_to (bytes)  11 reason (text)       12 emoji (text)
//	13 remove (bool)
type (
	openCBOR struct {
		Type   string   `cbor:"1,keyasint"`
		Title  string   `cbor:"2,keyasint"`
		Body   string   `cbor:"3,keyasint"`
		Labels []string `cbor:"4,keyasint"`
	}
	commentCBOR struct {
		Type    string `cbor:"1,keyasint"`
		Body    string `cbor:"3,keyasint"`
		ReplyTo []byte `cbor:"10,keyasint"`
	}
	editCBOR struct {
		Type  string  `cbor:"1,keyasint"`
		Title *string `cbor:"2,keyasint,omitempty"`
		Body  *string `cbor:"3,keyasint,omitempty"`
	}
	editCommentCBOR struct {
		Type    string `cbor:"1,keyasint"`
		Body    string `cbor:"3,keyasint"`
		Comment []byte `cbor:"9,keyasint"`
	}
	redactCommentCBOR struct {
		Type    string `cbor:"1,keyasint"`
		Comment []byte `cbor:"9,keyasint"`
	}
	labelCBOR struct {
		Type   string   `cbor:"1,keyasint"`
		Add    []string `cbor:"5,keyasint"`
		Remove []string `cbor:"6,keyasint"`
	}
	assignCBOR struct {
		Type   string   `cbor:"1,keyasint"`
		Add    [][]byte `cbor:"7,keyasint"`
		Remove [][]byte `cbor:"8,keyasint"`
	}
	closeCBOR struct {
		Type   string `cbor:"1,keyasint"`
		Reason string `cbor:"11,keyasint"`
	}
	reopenCBOR struct {
		Type string `cbor:"1,keyasint"`
	}
	reactCBOR struct {
		Type    string `cbor:"1,keyasint"`
		Comment []byte `cbor:"9,keyasint"`
		Emoji   string `cbor:"12,keyasint"`
		Remove  bool   `cbor:"13,keyasint"`
	}
)

// actionWire receives any action: the union of the keys above. Which keys
// a type may have is enforced by re-encoding the decoded change and
// comparing with the input (see ParseChange).
type actionWire struct {
	Type       string   `cbor:"1,keyasint"`
	Title      *string  `cbor:"2,keyasint"`
	Body       *string  `cbor:"3,keyasint"`
	Labels     []string `cbor:"4,keyasint"`
	Add        []string `cbor:"5,keyasint"`
	Remove     []string `cbor:"6,keyasint"`
	AddKeys    [][]byte `cbor:"7,keyasint"`
	RemoveKeys [][]byte `cbor:"8,keyasint"`
	Comment    []byte   `cbor:"9,keyasint"`
	ReplyTo    []byte   `cbor:"10,keyasint"`
	Reason     string   `cbor:"11,keyasint"`
	Emoji      string   `cbor:"12,keyasint"`
	Withdraw   bool     `cbor:"13,keyasint"`
	patchWire           // keys 14 and up (patch_codec.go)
}

func (a *Open) encode() any {
	return openCBOR{string(ActionOpen), a.Title, a.Body, orEmpty(a.Labels)}
}
func (a *Comment) encode() any {
	return commentCBOR{string(ActionComment), a.Body, optionalID(a.ReplyTo)}
}
func (a *Edit) encode() any { return editCBOR{string(ActionEdit), a.Title, a.Body} }
func (a *EditComment) encode() any {
	return editCommentCBOR{string(ActionEditComment), a.Body, a.Comment[:]}
}
func (a *RedactComment) encode() any {
	return redactCommentCBOR{string(ActionRedactComment), a.Comment[:]}
}
func (a *Label) encode() any {
	return labelCBOR{string(ActionLabel), orEmpty(a.Add), orEmpty(a.Remove)}
}
func (a *Assign) encode() any {
	return assignCBOR{string(ActionAssign), keysBytes(a.Add), keysBytes(a.Remove)}
}
func (a *Close) encode() any { return closeCBOR{string(ActionClose), string(a.Reason)} }
func (*Reopen) encode() any  { return reopenCBOR{string(ActionReopen)} }
func (a *React) encode() any {
	return reactCBOR{string(ActionReact), optionalID(a.Comment), a.Emoji, a.Remove}
}

// decodeAction turns a received action into its type. Keys that the type
// does not have are ignored here and caught by the re-encoding check.
func decodeAction(w *actionWire) (Action, error) {
	switch ActionType(w.Type) {
	case ActionOpen:
		return &Open{Title: deref(w.Title), Body: deref(w.Body), Labels: w.Labels}, nil
	case ActionComment:
		reply, err := idFromBytes("reply_to", w.ReplyTo, true)
		return &Comment{Body: deref(w.Body), ReplyTo: reply}, err
	case ActionEdit:
		return &Edit{Title: w.Title, Body: w.Body}, nil
	case ActionEditComment:
		id, err := idFromBytes("comment", w.Comment, false)
		return &EditComment{Comment: id, Body: deref(w.Body)}, err
	case ActionRedactComment:
		id, err := idFromBytes("comment", w.Comment, false)
		return &RedactComment{Comment: id}, err
	case ActionLabel:
		return &Label{Add: w.Add, Remove: w.Remove}, nil
	case ActionAssign:
		add, err := keysFromBytes(w.AddKeys)
		if err != nil {
			return nil, err
		}
		remove, err := keysFromBytes(w.RemoveKeys)
		return &Assign{Add: add, Remove: remove}, err
	case ActionClose:
		return &Close{Reason: CloseReason(w.Reason)}, nil
	case ActionReopen:
		return &Reopen{}, nil
	case ActionReact:
		id, err := idFromBytes("comment", w.Comment, true)
		return &React{Comment: id, Emoji: w.Emoji, Remove: w.Withdraw}, err
	}
	if a, ok, err := decodePatchAction(w); ok {
		return a, err
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownAction, truncate(w.Type))
}

// Change payload keys (ONLY APPEND, never renumber); all are required:
// 1 type (text), 2 object (bytes: 32, or empty in a root change),
// 3 parents (array of 32-byte ids, ascending), 4 actions (array of maps),
// 5 author (32 bytes), 6 clock (uint), 7 timestamp (uint, Unix ms),
// 8 nonce (16 bytes).
type changeCBOR struct {
	Type      string   `cbor:"1,keyasint"`
	Object    []byte   `cbor:"2,keyasint"`
	Parents   [][]byte `cbor:"3,keyasint"`
	Actions   []any    `cbor:"4,keyasint"`
	Author    []byte   `cbor:"5,keyasint"`
	Clock     uint64   `cbor:"6,keyasint"`
	Timestamp uint64   `cbor:"7,keyasint"`
	Nonce     []byte   `cbor:"8,keyasint"`
}

// changeWire receives a payload.
type changeWire struct {
	Type      string       `cbor:"1,keyasint"`
	Object    []byte       `cbor:"2,keyasint"`
	Parents   [][]byte     `cbor:"3,keyasint"`
	Actions   []actionWire `cbor:"4,keyasint"`
	Author    []byte       `cbor:"5,keyasint"`
	Clock     uint64       `cbor:"6,keyasint"`
	Timestamp uint64       `cbor:"7,keyasint"`
	Nonce     []byte       `cbor:"8,keyasint"`
}

// Blob keys (ONLY APPEND): 1 change (bytes: the payload), 2 signature
// (64 bytes). Both required.
type blobCBOR struct {
	Change    []byte `cbor:"1,keyasint"`
	Signature []byte `cbor:"2,keyasint"`
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// optionalID encodes a zero id as the empty byte string.
func optionalID(id ChangeID) []byte {
	if id.IsZero() {
		return []byte{}
	}
	return id[:]
}

func idFromBytes(what string, b []byte, emptyOK bool) (ChangeID, error) {
	var id ChangeID
	switch {
	case len(b) == len(id):
		copy(id[:], b)
		if !id.IsZero() {
			return id, nil
		}
	case len(b) == 0 && emptyOK:
		return id, nil
	}
	return ChangeID{}, fmt.Errorf("%w: %s id of %d bytes (want %d non-zero bytes)", ErrMalformed, what, len(b), len(id))
}

func keysBytes(keys []identity.NodeID) [][]byte {
	out := make([][]byte, len(keys))
	for i := range keys {
		out[i] = keys[i][:]
	}
	return out
}

func keysFromBytes(raw [][]byte) ([]identity.NodeID, error) {
	if len(raw) > MaxAssignees {
		return nil, tooLarge("%d assignees, max %d", len(raw), MaxAssignees)
	}
	var out []identity.NodeID
	for _, b := range raw {
		k, err := identity.NodeIDFromPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: assignee: %w", ErrMalformed, err)
		}
		out = append(out, k)
	}
	return out, nil
}
