package collab

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Authority says who speaks for the repository: its delegates (from the
// newest version of the repository identity document), and how many of
// them must merge a patch's revision for it to be merged. Delegates may
// perform every action.
type Authority interface {
	IsDelegate(identity.NodeID) bool
	Threshold() int
}

// Delegates is an Authority given as a list of keys, with threshold 1.
type Delegates []identity.NodeID

// IsDelegate reports whether k is in the list.
func (d Delegates) IsDelegate(k identity.NodeID) bool { return slices.Contains(d, k) }

// Threshold is 1: one delegate's merge merges a patch.
func (d Delegates) Threshold() int { return 1 }

// Quorum is an Authority whose patches are merged by Min delegates.
type Quorum struct {
	Delegates
	Min int
}

// Threshold is q.Min.
func (q Quorum) Threshold() int { return max(q.Min, 1) }

// Rejected is a change the fold left out, with the reason (Err wraps one
// of ErrWrongObject, ErrMissingParent, ErrRejectedParent,
// ErrClockNotIncreasing, ErrClockJump).
type Rejected struct {
	ID  ChangeID
	Err error
}

// Skipped is an action the fold did not apply (Err wraps ErrUnauthorized,
// ErrNoSuchComment or ErrRedacted). Skipping is not fatal: the rest of
// the change still applies.
type Skipped struct {
	Change ChangeID
	Action int // index in the change's actions
	Type   ActionType
	Err    error
}

// Report lists what a fold left out: rejected changes ascending by id,
// skipped actions in the order of the fold.
type Report struct {
	Rejected []Rejected
	Skipped  []Skipped
}

// Order is the fold's first step, shared by every object type: it keeps
// the changes of object (of type typ) that are valid in the set, and
// returns them in the order the fold applies them, with the rest rejected.
//
// The set is deduplicated by id. Changes are visited in ascending
// (clock, id); because a valid change's clock exceeds its parents', this
// visits every parent before its children and is a topological order in
// which concurrent changes are ordered by (clock, id). A change is valid
// if it is the object's root change, or if every parent is in the set,
// valid, and has a smaller clock, and its clock exceeds the largest parent
// clock by at most MaxClockJump. It returns ErrNoRoot if the root change
// is not in the set.
func Order(typ ObjectType, object ObjectID, changes []*Change) ([]*Change, []Rejected, error) {
	byID := make(map[ChangeID]*Change, len(changes))
	for _, c := range changes {
		if c != nil {
			byID[c.id] = c
		}
	}
	sorted := make([]*Change, 0, len(byID))
	for _, c := range byID {
		sorted = append(sorted, c)
	}
	slices.SortFunc(sorted, func(a, b *Change) int {
		return cmp.Or(cmp.Compare(a.clock, b.clock), a.id.Compare(b.id))
	})
	accepted := make([]*Change, 0, len(sorted))
	var rejected []Rejected
	bad := map[ChangeID]bool{}
	for _, c := range sorted {
		if err := checkInSet(typ, object, c, byID, bad); err != nil {
			bad[c.id] = true
			rejected = append(rejected, Rejected{c.id, err})
			continue
		}
		accepted = append(accepted, c)
	}
	slices.SortFunc(rejected, func(a, b Rejected) int { return a.ID.Compare(b.ID) })
	if len(accepted) == 0 || accepted[0].id != object {
		return nil, rejected, fmt.Errorf("folding %s %s: %w", typ, object.Short(), ErrNoRoot)
	}
	return accepted, rejected, nil
}

// checkInSet checks c against its parents; every parent with a smaller
// clock has already been visited (bad holds the rejected ones).
func checkInSet(typ ObjectType, object ObjectID, c *Change, byID map[ChangeID]*Change, bad map[ChangeID]bool) error {
	if c.typ != typ || c.ObjectID() != object {
		return fmt.Errorf("%w: %s %s, not %s %s", ErrWrongObject, c.typ, c.ObjectID().Short(), typ, object.Short())
	}
	var top uint64
	for _, p := range c.parents {
		pc, ok := byID[p]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s", ErrMissingParent, p.Short())
		case pc.clock >= c.clock:
			return fmt.Errorf("%w: clock %d, parent %s has %d", ErrClockNotIncreasing, c.clock, p.Short(), pc.clock)
		case bad[p]:
			return fmt.Errorf("%w: %s", ErrRejectedParent, p.Short())
		}
		top = max(top, pc.clock)
	}
	if !c.IsRoot() && c.clock-top > MaxClockJump {
		return fmt.Errorf("%w: clock %d, largest parent clock %d, max jump %d", ErrClockJump, c.clock, top, MaxClockJump)
	}
	return nil
}

// Heads returns the ids of the changes of set that no change of set names
// as a parent, ascending. For the changes a fold accepted, these are the
// parents of the next change, and a cache of folded state can key on them.
func Heads(set []*Change) []ChangeID {
	parent := map[ChangeID]bool{}
	for _, c := range set {
		for _, p := range c.parents {
			parent[p] = true
		}
	}
	var heads []ChangeID
	for _, c := range set {
		if !parent[c.id] {
			heads = append(heads, c.id)
		}
	}
	slices.SortFunc(heads, ChangeID.Compare)
	return slices.Compact(heads)
}
