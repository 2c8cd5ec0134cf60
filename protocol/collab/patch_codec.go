package collab

// Patch action keys continue the one numbering of codec.go (ONLY APPEND):
//
//	14 base (bytes)      15 head (bytes)        16 revision (bytes)
//	17 verdict (text)    18 comments (map[])    19 draft (bool)
//	20 commit (bytes)
//
// Title is key 2; description and summary are key 3 (body); reply_to is
// key 10. An inline comment is a map of its own (ONLY APPEND): 1 commit
// (bytes), 2 path (text), 3 start (uint), 4 end (uint), 5 body (text).
type (
	openPatchCBOR struct {
		Type        string `cbor:"1,keyasint"`
		Title       string `cbor:"2,keyasint"`
		Description string `cbor:"3,keyasint"`
		Base        []byte `cbor:"14,keyasint"`
		Head        []byte `cbor:"15,keyasint"`
		Draft       bool   `cbor:"19,keyasint"`
	}
	reviseCBOR struct {
		Type        string `cbor:"1,keyasint"`
		Description string `cbor:"3,keyasint"`
		Base        []byte `cbor:"14,keyasint"`
		Head        []byte `cbor:"15,keyasint"`
	}
	reviewCBOR struct {
		Type     string       `cbor:"1,keyasint"`
		Summary  string       `cbor:"3,keyasint"`
		Revision []byte       `cbor:"16,keyasint"`
		Verdict  string       `cbor:"17,keyasint"`
		Comments []inlineCBOR `cbor:"18,keyasint"`
	}
	inlineCBOR struct {
		Commit []byte `cbor:"1,keyasint"`
		Path   string `cbor:"2,keyasint"`
		Start  uint64 `cbor:"3,keyasint"`
		End    uint64 `cbor:"4,keyasint"`
		Body   string `cbor:"5,keyasint"`
	}
	commentRevisionCBOR struct {
		Type     string `cbor:"1,keyasint"`
		Body     string `cbor:"3,keyasint"`
		ReplyTo  []byte `cbor:"10,keyasint"`
		Revision []byte `cbor:"16,keyasint"`
	}
	mergeCBOR struct {
		Type     string `cbor:"1,keyasint"`
		Revision []byte `cbor:"16,keyasint"`
		Commit   []byte `cbor:"20,keyasint"`
	}
)

// patchWire holds the patch keys of actionWire (embedded there).
type patchWire struct {
	Base     []byte       `cbor:"14,keyasint"`
	Head     []byte       `cbor:"15,keyasint"`
	Revision []byte       `cbor:"16,keyasint"`
	Verdict  string       `cbor:"17,keyasint"`
	Inline   []inlineCBOR `cbor:"18,keyasint"`
	Draft    bool         `cbor:"19,keyasint"`
	Commit   []byte       `cbor:"20,keyasint"`
}

func (a *OpenPatch) encode() any {
	return openPatchCBOR{string(ActionOpenPatch), a.Title, a.Description, commitBytes(a.Base), commitBytes(a.Head), a.Draft}
}
func (a *Revise) encode() any {
	return reviseCBOR{string(ActionRevise), a.Description, commitBytes(a.Base), commitBytes(a.Head)}
}
func (a *Review) encode() any {
	inline := make([]inlineCBOR, len(a.Comments))
	for i, c := range a.Comments {
		inline[i] = inlineCBOR{commitBytes(c.Commit), c.Path, c.Start, c.End, c.Body}
	}
	return reviewCBOR{string(ActionReview), a.Summary, a.Revision[:], string(a.Verdict), inline}
}
func (a *CommentRevision) encode() any {
	return commentRevisionCBOR{string(ActionCommentRevision), a.Body, optionalID(a.ReplyTo), a.Revision[:]}
}
func (*Draft) encode() any { return reopenCBOR{string(ActionDraft)} }
func (*Ready) encode() any { return reopenCBOR{string(ActionReady)} }
func (a *Merge) encode() any {
	return mergeCBOR{string(ActionMerge), a.Revision[:], commitBytes(a.Commit)}
}

// decodePatchAction decodes the patch action types; ok is false for any
// other type.
func decodePatchAction(w *actionWire) (a Action, ok bool, err error) {
	p := &w.patchWire
	switch ActionType(w.Type) {
	case ActionOpenPatch:
		a = &OpenPatch{Title: deref(w.Title), Description: deref(w.Body),
			Base: commitFromBytes(p.Base), Head: commitFromBytes(p.Head), Draft: p.Draft}
	case ActionRevise:
		a = &Revise{Description: deref(w.Body), Base: commitFromBytes(p.Base), Head: commitFromBytes(p.Head)}
	case ActionReview:
		if len(p.Inline) > MaxInlineComments {
			return nil, true, tooLarge("%d inline comments, max %d", len(p.Inline), MaxInlineComments)
		}
		rev, err := idFromBytes("revision", p.Revision, false)
		r := &Review{Revision: rev, Verdict: Verdict(p.Verdict), Summary: deref(w.Body)}
		for _, c := range p.Inline {
			r.Comments = append(r.Comments, InlineComment{commitFromBytes(c.Commit), c.Path, c.Start, c.End, c.Body})
		}
		return r, true, err
	case ActionCommentRevision:
		rev, err := idFromBytes("revision", p.Revision, false)
		if err != nil {
			return nil, true, err
		}
		reply, err := idFromBytes("reply_to", w.ReplyTo, true)
		return &CommentRevision{Revision: rev, Body: deref(w.Body), ReplyTo: reply}, true, err
	case ActionDraft:
		a = &Draft{}
	case ActionReady:
		a = &Ready{}
	case ActionMerge:
		rev, err := idFromBytes("revision", p.Revision, false)
		return &Merge{Revision: rev, Commit: commitFromBytes(p.Commit)}, true, err
	default:
		return nil, false, nil
	}
	return a, true, nil
}
