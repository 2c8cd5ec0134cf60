// Package collab is the pure core of collaborative objects (DESIGN D7):
// the signed change format, its strict decoder, and the fold of a set of
// changes into the state of an issue (FoldIssue) or a patch (FoldPatch).
// Nothing here touches git, disk or sockets; daemon/collab stores changes
// as git commits and calls the folds.
//
// A change is a signed CBOR blob (spec/collab.md §2). Its id is SHA-256 of
// its signed bytes. Changes name their parents by change id inside the
// signed bytes, so the fold depends on nothing but the set of changes: the
// same set gives the same state on every node, whatever the order in which
// the changes arrived.
package collab

import "time"

// ChangeDomain separates change signatures from every other signature of
// the protocol (see protocol/wire for the others).
const ChangeDomain = "megaengine/1 collab-change"

// BlobName is the name of the one blob in a change commit's tree.
const BlobName = "change.cbor"

// Limits. The total size is checked before the CBOR decoder runs, so no
// string or list can be larger than the input; the rest are checked on
// every decoded change before it is used, and on every change before it is
// signed.
const (
	// MaxChangeSize bounds the encoded blob (payload and signature).
	MaxChangeSize = 256 << 10

	// MaxActions bounds the actions of one change.
	MaxActions = 16

	// MaxParents bounds the parents of one change. An author who has seen
	// more heads than this merges them in several changes.
	MaxParents = 64

	// MaxTitleLen bounds an issue title, in bytes of UTF-8.
	MaxTitleLen = 256

	// MaxBodyLen bounds an issue body or a comment, in bytes of UTF-8.
	MaxBodyLen = 64 << 10

	// MaxLabels bounds each label list of one action (open's labels, and
	// label's add and remove lists).
	MaxLabels = 32

	// MaxLabelLen bounds one label, in bytes of UTF-8.
	MaxLabelLen = 64

	// MaxAssignees bounds each list of an assign action.
	MaxAssignees = 16

	// MaxEmojiLen bounds a reaction, in bytes of UTF-8.
	MaxEmojiLen = 32

	// MaxClockJump bounds how far a change's Lamport clock may exceed the
	// largest clock of its parents (and bounds a root change's clock), so
	// that nobody can push the clock of an object towards overflow.
	MaxClockJump = 1_000_000

	// MaxTimestamp bounds a change's timestamp (Unix ms): 2^53−1, so the
	// value is exact as a JSON number.
	MaxTimestamp = 1<<53 - 1

	// NonceLen is the length of a change's random nonce.
	NonceLen = 16

	// MinPrefixLen is the shortest abbreviation of a change id that
	// ResolveChangeID accepts.
	MinPrefixLen = 4
)

// maxTime is MaxTimestamp as a time, for NewChange.
var maxTime = time.UnixMilli(MaxTimestamp)
