package collab

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// everyAction returns one change per action type of an issue, in a chain.
func everyAction(t testing.TB) []*Change {
	root := open(t, bob, "crash on start", "bug")
	c1 := mk(t, carol, []*Change{root}, &Comment{Body: "same here"})
	c2 := mk(t, bob, []*Change{c1}, &Comment{Body: "which version?", ReplyTo: c1.ID()})
	return []*Change{
		root, c1, c2,
		mk(t, bob, []*Change{c2}, &Edit{Title: ptr("crash on start-up"), Body: ptr("")}),
		mk(t, carol, []*Change{c2}, &EditComment{Comment: c1.ID(), Body: "same here, v1.2"}),
		mk(t, bob, []*Change{c2}, &RedactComment{Comment: c2.ID()}),
		mk(t, alice, []*Change{c2}, &Label{Add: []string{"p1", "crash"}, Remove: []string{"bug"}}),
		mk(t, alice, []*Change{c2}, &Assign{Add: []identity.NodeID{bob.ID(), alice.ID()}}),
		mk(t, bob, []*Change{c2}, &Close{Reason: ReasonSolved}),
		mk(t, bob, []*Change{c2}, &Reopen{}),
		mk(t, carol, []*Change{c2}, &React{Emoji: "👍"}, &React{Comment: c1.ID(), Emoji: "🎉", Remove: true}),
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range everyAction(t) {
		raw := c.Marshal()
		got, err := ParseChange(raw)
		if err != nil {
			t.Fatalf("%s: %v", c.actions[0].Type(), err)
		}
		if got.ID() != c.ID() || !bytes.Equal(got.Marshal(), raw) {
			t.Fatalf("%s: parsed change differs in id or bytes", c.actions[0].Type())
		}
		if !reflect.DeepEqual(got.Actions(), c.Actions()) || !reflect.DeepEqual(got.Parents(), c.Parents()) ||
			got.Author() != c.Author() || got.Clock() != c.Clock() || got.Timestamp() != c.Timestamp() ||
			got.Nonce() != c.Nonce() || got.ObjectID() != c.ObjectID() || got.Type() != c.Type() {
			t.Fatalf("%s: parsed change differs:\n got %+v\nwant %+v", c.actions[0].Type(), got, c)
		}
	}
}

func TestSignChangeNormalizes(t *testing.T) {
	root := open(t, alice, "t", "b", "a", "b")
	if got := root.Actions()[0].(*Open).Labels; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("labels %q, want sorted and unique", got)
	}
	if _, err := ParseChange(root.Marshal()); err != nil {
		t.Fatal(err)
	}
}

func TestNewChange(t *testing.T) {
	now := time.UnixMilli(vectorTimeMs)
	root, err := NewChange(bob, TypeIssue, ObjectID{}, nil, []Action{&Open{Title: "t"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if root.Clock() != 1 || root.Timestamp() != vectorTimeMs || !root.IsRoot() || root.ObjectID() != root.ID() {
		t.Fatalf("root: clock %d, timestamp %d, root %v", root.Clock(), root.Timestamp(), root.IsRoot())
	}
	a := mk(t, carol, []*Change{root}, &Comment{Body: "x"})
	b := mk(t, carol, []*Change{a}, &Comment{Body: "y"})
	m, err := NewChange(alice, TypeIssue, root.ID(), []*Change{a, b, root}, []Action{&Close{Reason: ReasonOther}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Clock() != b.Clock()+1 {
		t.Fatalf("clock %d, want %d", m.Clock(), b.Clock()+1)
	}
	if want := []ChangeID{a.ID(), b.ID(), root.ID()}; !sameIDs(m.Parents(), want) {
		t.Fatalf("parents %v, want %v", m.Parents(), want)
	}
	m2, _ := NewChange(alice, TypeIssue, root.ID(), []*Change{b}, []Action{&Close{Reason: ReasonOther}}, now)
	if m2.Nonce() == m.Nonce() || m2.ID() == m.ID() {
		t.Fatal("two equal changes got the same nonce or id")
	}
	other := open(t, bob, "another issue")
	if _, err := NewChange(alice, TypeIssue, root.ID(), []*Change{other}, []Action{&Reopen{}}, now); !errors.Is(err, ErrWrongObject) {
		t.Fatalf("parent of another object: %v", err)
	}
}

func sameIDs(a, b []ChangeID) bool {
	a, b = append([]ChangeID(nil), a...), append([]ChangeID(nil), b...)
	sortIDs(a)
	sortIDs(b)
	return reflect.DeepEqual(a, b)
}

type parseCase struct {
	name string
	raw  []byte
	want error
}

// invalidChangeCases are blobs that ParseChange must reject. They are also
// fuzz seeds and, in spec/vectors/collab.json, negative vectors.
func invalidChangeCases(t testing.TB) []parseCase {
	root := open(t, bob, "t")
	good := mk(t, carol, []*Change{root}, &Comment{Body: "hello"})
	payloadOf := func(c *Change) []byte { p, _ := c.encodePayload(); return p }
	variant := func(edit func(c *Change)) *Change {
		c := *good
		c.actions = slices.Clone(good.actions)
		c.parents = slices.Clone(good.parents)
		edit(&c)
		return &c
	}
	forged := func(edit func(c *Change)) []byte { return signUnchecked(t, carol, variant(edit)) }
	// A payload with an extra key 9, canonically encoded.
	extra, _ := cborx.Marshal(struct {
		Type      string   `cbor:"1,keyasint"`
		Object    []byte   `cbor:"2,keyasint"`
		Parents   [][]byte `cbor:"3,keyasint"`
		Actions   []any    `cbor:"4,keyasint"`
		Author    []byte   `cbor:"5,keyasint"`
		Clock     uint64   `cbor:"6,keyasint"`
		Timestamp uint64   `cbor:"7,keyasint"`
		Nonce     []byte   `cbor:"8,keyasint"`
		Extra     uint64   `cbor:"9,keyasint"`
	}{"issue", good.object[:], [][]byte{root.id[:]}, []any{good.actions[0].encode()}, carol.ID().PublicKey(), good.clock, good.timestamp, good.nonce[:], 7})
	badSig := good.Marshal()
	badSig[len(badSig)-1] ^= 1
	long := strings.Repeat("x", MaxBodyLen+1)
	return []parseCase{
		{"bad_signature", badSig, ErrBadSignature},
		{"signed_by_another_key", signPayload(t, bob, payloadOf(good)), ErrBadSignature},
		{"unknown_action", forged(func(c *Change) { c.actions = []Action{bogusAction{}} }), ErrUnknownAction},
		{"unknown_action_after_known", forged(func(c *Change) { c.actions = append(c.actions, bogusAction{}) }), ErrUnknownAction},
		{"patch_action_in_issue", forged(func(c *Change) { c.actions = []Action{&Ready{}} }), ErrUnknownAction},
		{"patch_root_with_issue_open", signUnchecked(t, bob, &Change{typ: TypePatch, actions: root.actions, clock: 1, nonce: nonce(2)}), ErrInvalid},
		{"unknown_type", forged(func(c *Change) { c.typ = "wiki" }), ErrUnknownType},
		{"root_clock_jump", signUnchecked(t, bob, &Change{typ: TypeIssue, actions: root.actions, clock: MaxClockJump + 1, nonce: nonce(1)}), ErrClockJump},
		{"clock_zero", forged(func(c *Change) { c.clock = 0 }), ErrInvalid},
		{"no_actions", forged(func(c *Change) { c.actions = nil }), ErrInvalid},
		{"too_many_actions", forged(func(c *Change) {
			for range MaxActions {
				c.actions = append(c.actions, &Reopen{})
			}
		}), ErrTooLarge},
		{"two_comments", forged(func(c *Change) { c.actions = append(c.actions, &Comment{Body: "again"}) }), ErrInvalid},
		{"open_outside_root", forged(func(c *Change) { c.actions = []Action{&Open{Title: "t"}} }), ErrInvalid},
		{"root_with_parents", forged(func(c *Change) { c.object = ObjectID{}; c.actions = root.actions }), ErrInvalid},
		{"no_parents", forged(func(c *Change) { c.parents = nil }), ErrInvalid},
		{"title_too_long", forged(func(c *Change) { c.actions = []Action{&Edit{Title: ptr(strings.Repeat("t", MaxTitleLen+1))}} }), ErrInvalid},
		{"title_control_character", forged(func(c *Change) { c.actions = []Action{&Edit{Title: ptr("a\nb")}} }), ErrInvalid},
		{"body_too_long", forged(func(c *Change) { c.actions = []Action{&Comment{Body: long}} }), ErrTooLarge},
		{"empty_comment", forged(func(c *Change) { c.actions = []Action{&Comment{}} }), ErrInvalid},
		{"edit_nothing", forged(func(c *Change) { c.actions = []Action{&Edit{}} }), ErrInvalid},
		{"labels_unsorted", forged(func(c *Change) { c.actions = []Action{&Label{Add: []string{"b", "a"}}} }), ErrInvalid},
		{"label_added_and_removed", forged(func(c *Change) { c.actions = []Action{&Label{Add: []string{"a"}, Remove: []string{"a"}}} }), ErrInvalid},
		{"too_many_labels", forged(func(c *Change) {
			l := &Label{}
			for i := range MaxLabels + 1 {
				l.Add = append(l.Add, string(rune('A'+i)))
			}
			c.actions = []Action{l}
		}), ErrTooLarge},
		{"label_too_long", forged(func(c *Change) { c.actions = []Action{&Label{Add: []string{strings.Repeat("l", MaxLabelLen+1)}}} }), ErrInvalid},
		{"emoji_too_long", forged(func(c *Change) { c.actions = []Action{&React{Emoji: strings.Repeat("😀", 9)}} }), ErrInvalid},
		{"close_reason_unknown", forged(func(c *Change) { c.actions = []Action{&Close{Reason: "wontfix"}} }), ErrInvalid},
		{"parents_unsorted", forged(func(c *Change) { c.parents = []ChangeID{{2}, {1}} }), ErrInvalid},
		{"extra_key", signPayload(t, carol, extra), ErrMalformed},
		{"trailing_bytes", append(good.Marshal(), 0), ErrMalformed},
		{"truncated", good.Marshal()[:40], ErrMalformed},
		{"not_cbor", []byte("hello"), ErrMalformed},
		{"too_large", make([]byte, MaxChangeSize+1), ErrTooLarge},
	}
}

func TestParseChangeRejects(t *testing.T) {
	for _, c := range invalidChangeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseChange(c.raw)
			if !errors.Is(err, c.want) || got != nil {
				t.Fatalf("got %v (change %v), want %v", err, got != nil, c.want)
			}
		})
	}
}

func TestSignChangeRefuses(t *testing.T) {
	root := open(t, bob, "t")
	for name, f := range map[string]Fields{
		"issue open in a patch": {Type: TypePatch, Actions: []Action{&Open{Title: "t"}}, Clock: 1},
		"root jump":             {Type: TypeIssue, Actions: []Action{&Open{Title: "t"}}, Clock: MaxClockJump + 1},
		"no parents":            {Type: TypeIssue, Object: root.ID(), Actions: []Action{&Reopen{}}, Clock: 2},
		"nil action":            {Type: TypeIssue, Object: root.ID(), Parents: []ChangeID{root.ID()}, Actions: []Action{nil}, Clock: 2},
		"huge":                  {Type: TypeIssue, Object: root.ID(), Parents: []ChangeID{root.ID()}, Clock: 2, Actions: hugeActions()},
	} {
		if _, err := SignChange(alice, f); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func hugeActions() []Action {
	var out []Action
	for range 5 {
		out = append(out, &Edit{Body: ptr(strings.Repeat("b", MaxBodyLen))})
	}
	return out
}

func TestChangeIDText(t *testing.T) {
	c := open(t, bob, "t")
	id, err := ParseChangeID(c.ID().String())
	if err != nil || id != c.ID() {
		t.Fatalf("ParseChangeID(String()) = %v, %v", id, err)
	}
	for _, bad := range []string{"", "abc", strings.ToUpper(c.ID().String()), c.ID().String() + "0", strings.Repeat("g", 64)} {
		if _, err := ParseChangeID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseChangeID(%q): %v", bad, err)
		}
	}
	a, b := ChangeID{0xab, 0xcd, 0x01}, ChangeID{0xab, 0xcd, 0x02}
	ids := []ChangeID{a, b, a}
	if got, err := ResolveChangeID("abcd01", ids); err != nil || got != a {
		t.Errorf("resolve unique prefix: %v, %v", got, err)
	}
	if _, err := ResolveChangeID("abcd", ids); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := ResolveChangeID("ffff", ids); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown prefix: %v", err)
	}
	if _, err := ResolveChangeID("abc", ids); !errors.Is(err, ErrInvalid) {
		t.Errorf("short prefix: %v", err)
	}
	ref := RefName(TypeIssue, c.ID())
	if ref != "refs/cobs/issue/"+c.ID().String() {
		t.Fatalf("ref %s", ref)
	}
	if typ, id, err := ParseRefName(ref); err != nil || typ != TypeIssue || id != c.ID() {
		t.Fatalf("ParseRefName: %v %v %v", typ, id, err)
	}
	for _, bad := range []string{"refs/heads/main", "refs/cobs/issue", "refs/cobs/wiki/" + c.ID().String(), "refs/cobs/issue/../x"} {
		if _, _, err := ParseRefName(bad); err == nil {
			t.Errorf("ParseRefName(%q) accepted", bad)
		}
	}
}
