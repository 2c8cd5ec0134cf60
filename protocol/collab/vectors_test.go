package collab

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// go test ./protocol/collab/ -run TestVectors -update rewrites
// spec/vectors/collab.json from the inputs below. Without -update the
// tests check that the file agrees with this code byte for byte, and read
// the file as another implementation would.
var update = flag.Bool("update", false, "rewrite spec/vectors/collab.json")

var vectorsPath = filepath.Join("..", "..", "spec", "vectors", "collab.json")

type vectorFile struct {
	Description string          `json:"description"`
	Keys        []keyVector     `json:"keys"`
	Change      changeVector    `json:"change"`
	History     historyVector   `json:"history"`
	Patch       historyVector   `json:"patch_history"`
	Invalid     []invalidVector `json:"invalid"`
}

type keyVector struct {
	Name      string          `json:"name"`
	Seed      string          `json:"seed"`
	PublicKey string          `json:"public_key"`
	DID       identity.NodeID `json:"did"`
}

type changeVector struct {
	Fields      json.RawMessage `json:"fields"` // for people; the payload is normative
	Payload     string          `json:"payload"`
	SignedBytes string          `json:"signed_bytes"`
	Signature   string          `json:"signature"`
	ID          ChangeID        `json:"id"`
	Blob        string          `json:"blob"`
}

type historyVector struct {
	Type      ObjectType        `json:"type"`
	Object    ObjectID          `json:"object"`
	Delegates []identity.NodeID `json:"delegates"`
	Changes   []historyChange   `json:"changes"`
	State     json.RawMessage   `json:"state"`
	Rejected  []rejectedVector  `json:"rejected"`
	Skipped   []skippedVector   `json:"skipped"`
}

type historyChange struct {
	ID     ChangeID        `json:"id"`
	Fields json.RawMessage `json:"fields"`
	Blob   string          `json:"blob"`
}

type rejectedVector struct {
	ID    ChangeID `json:"id"`
	Error string   `json:"error"`
}

type skippedVector struct {
	Change ChangeID   `json:"change"`
	Action int        `json:"action"`
	Type   ActionType `json:"type"`
	Error  string     `json:"error"`
}

type invalidVector struct {
	Name  string `json:"name"`
	Blob  string `json:"blob"`
	Error string `json:"error"`
}

// errorNames are the error classes of the vector file, most specific first.
var errorNames = []struct {
	name string
	err  error
}{
	{"unknown_type", ErrUnknownType}, {"unknown_action", ErrUnknownAction}, {"clock_jump", ErrClockJump},
	{"bad_signature", ErrBadSignature}, {"too_large", ErrTooLarge}, {"malformed", ErrMalformed}, {"invalid", ErrInvalid},
	{"missing_parent", ErrMissingParent}, {"rejected_parent", ErrRejectedParent},
	{"clock_not_increasing", ErrClockNotIncreasing}, {"wrong_object", ErrWrongObject},
	{"unauthorized", ErrUnauthorized}, {"no_such_comment", ErrNoSuchComment}, {"redacted", ErrRedacted},
	{"no_such_revision", ErrNoSuchRevision}, {"merged", ErrMerged},
}

func errName(err error) string {
	for _, e := range errorNames {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	panic(fmt.Sprintf("no name for %v", err))
}

func errByName(name string) error {
	for _, e := range errorNames {
		if e.name == name {
			return e.err
		}
	}
	return nil
}

// actionJSON describes an action for people reading the vectors.
func actionJSON(a Action) map[string]any {
	m := map[string]any{"type": a.Type()}
	switch a := a.(type) {
	case *Open:
		m["title"], m["body"], m["labels"] = a.Title, a.Body, orEmpty(a.Labels)
	case *Comment:
		m["body"], m["reply_to"] = a.Body, hex.EncodeToString(optionalID(a.ReplyTo))
	case *Edit:
		if a.Title != nil {
			m["title"] = *a.Title
		}
		if a.Body != nil {
			m["body"] = *a.Body
		}
	case *EditComment:
		m["comment"], m["body"] = a.Comment, a.Body
	case *RedactComment:
		m["comment"] = a.Comment
	case *Label:
		m["add"], m["remove"] = orEmpty(a.Add), orEmpty(a.Remove)
	case *Assign:
		m["add"], m["remove"] = orEmpty(a.Add), orEmpty(a.Remove)
	case *Close:
		m["reason"] = a.Reason
	case *React:
		m["comment"], m["emoji"], m["remove"] = hex.EncodeToString(optionalID(a.Comment)), a.Emoji, a.Remove
	default:
		patchActionJSON(m, a)
	}
	return m
}

func changeJSON(t testing.TB, c *Change) json.RawMessage {
	actions := make([]any, len(c.actions))
	for i, a := range c.actions {
		actions[i] = actionJSON(a)
	}
	nonce := c.Nonce()
	b, err := json.Marshal(map[string]any{
		"type": c.typ, "object": hex.EncodeToString(optionalID(c.object)), "parents": orEmpty(c.parents),
		"actions": actions, "author": c.author, "clock": c.clock, "timestamp_ms": c.timestamp,
		"nonce": hex.EncodeToString(nonce[:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorHistory is a small issue with branches, a merge, a tie broken by
// id, one skipped action and two rejected changes. Every input is fixed.
func vectorHistory(t testing.TB) []*Change {
	n := uint64(0)
	sign := func(key *identity.Key, clock uint64, parents []*Change, actions ...Action) *Change {
		n++
		f := Fields{Type: TypeIssue, Actions: actions, Clock: clock, Timestamp: vectorTimeMs + n*60_000, Nonce: nonce(n)}
		for _, p := range parents {
			f.Object = p.ObjectID()
			f.Parents = append(f.Parents, p.ID())
		}
		c, err := SignChange(key, f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := sign(bob, 1, nil, &Open{Title: "Clone fails behind NAT", Body: "mecli repo clone hangs.", Labels: []string{"bug"}})
	c1 := sign(carol, 2, []*Change{root}, &Comment{Body: "Same here."}, &React{Emoji: "👍"})
	l := sign(alice, 2, []*Change{root}, &Label{Add: []string{"nat", "relay"}})
	e1 := sign(bob, 3, []*Change{c1}, &Edit{Title: ptr("Clone hangs behind NAT")})
	e2 := sign(alice, 3, []*Change{l}, &Edit{Title: ptr("Clone hangs behind symmetric NAT")})
	sl := sign(carol, 3, []*Change{c1}, &Label{Add: []string{"wontfix"}})
	m := sign(alice, 4, []*Change{e1, e2, sl}, &Comment{Body: "Fixed by relaying.", ReplyTo: c1.ID()},
		&Assign{Add: []identity.NodeID{alice.ID()}}, &Close{Reason: ReasonSolved})
	same := sign(carol, 4, []*Change{m}, &Reopen{})
	jump := sign(carol, 5+MaxClockJump, []*Change{m}, &Reopen{})
	return []*Change{root, c1, l, e1, e2, sl, m, same, jump}
}

func buildVectors(t testing.TB) []byte {
	f := vectorFile{Description: "MegaEngine collaborative object vectors (spec/collab.md). Keys: RFC 8032 tests 1-3. " +
		"Byte strings are lowercase hex; ids are hex; keys in did form. \"fields\" describe a change for people; the " +
		"payload is normative. Regenerate with: go test ./protocol/collab/ -run TestVectors -update"}
	for _, k := range []struct{ name, seed string }{{"alice", aliceSeedHex}, {"bob", bobSeedHex}, {"carol", carolSeedHex}} {
		key := keyFromHex(k.seed)
		f.Keys = append(f.Keys, keyVector{k.name, k.seed, hex.EncodeToString(key.ID().PublicKey()), key.ID()})
	}
	history := vectorHistory(t)
	c := history[len(history)-3] // the merge: several parents and actions
	payload, _ := c.encodePayload()
	blob := c.Marshal()
	f.Change = changeVector{
		Fields: changeJSON(t, c), Payload: hex.EncodeToString(payload), SignedBytes: hex.EncodeToString(signedBytes(payload)),
		Signature: hex.EncodeToString(blob[len(blob)-64:]), ID: c.ID(), Blob: hex.EncodeToString(blob),
	}
	f.History = historyToVector(t, TypeIssue, history)
	f.Patch = historyToVector(t, TypePatch, vectorPatchHistory(t))
	for _, c := range invalidChangeCases(t) {
		if len(c.raw) <= 4096 {
			f.Invalid = append(f.Invalid, invalidVector{c.name, hex.EncodeToString(c.raw), errName(c.want)})
		}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func TestVectorsUpToDate(t *testing.T) {
	want := buildVectors(t)
	if *update {
		if err := os.WriteFile(vectorsPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the code; run go test ./protocol/collab/ -run TestVectors -update and review the diff", vectorsPath)
	}
}

func readVectors(t *testing.T) vectorFile {
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestVectors reads the vector file as an implementation in another
// language would: keys from seeds, the signed change re-made from its
// payload byte for byte, the history folded to the stated state, and every
// invalid blob rejected with its class.
func TestVectors(t *testing.T) {
	f := readVectors(t)
	keys := map[identity.NodeID]*identity.Key{}
	for _, k := range f.Keys {
		key := keyFromHex(k.Seed)
		if hex.EncodeToString(key.ID().PublicKey()) != k.PublicKey || key.ID() != k.DID {
			t.Fatalf("key %s: seed gives %s", k.Name, key.ID())
		}
		keys[key.ID()] = key
	}
	t.Run("change", func(t *testing.T) {
		v := f.Change
		c, err := ParseChange(mustHex(v.Blob))
		if err != nil {
			t.Fatal(err)
		}
		p, err := decodePayload(mustHex(v.Payload))
		if err != nil {
			t.Fatal(err)
		}
		again, err := SignChange(keys[p.author], Fields{p.typ, p.object, p.parents, p.actions, p.clock, p.timestamp, p.nonce})
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := again.encodePayload()
		blob := again.Marshal()
		checkHex(t, "payload", payload, v.Payload)
		checkHex(t, "signed bytes", signedBytes(payload), v.SignedBytes)
		checkHex(t, "signature", blob[len(blob)-64:], v.Signature)
		checkHex(t, "blob", blob, v.Blob)
		if again.ID() != v.ID || c.ID() != v.ID {
			t.Errorf("id %s / %s, vector says %s", again.ID(), c.ID(), v.ID)
		}
		if !jsonEqual(changeJSON(t, c), v.Fields) {
			t.Errorf("fields %s, vector says %s", changeJSON(t, c), v.Fields)
		}
	})
	t.Run("history", func(t *testing.T) { checkHistoryVector(t, f.History) })
	t.Run("patch_history", func(t *testing.T) {
		if f.Patch.Type != TypePatch {
			t.Fatalf("patch history of type %q", f.Patch.Type)
		}
		checkHistoryVector(t, f.Patch)
	})
	if len(f.Invalid) < 20 {
		t.Fatalf("only %d invalid vectors", len(f.Invalid))
	}
	for _, v := range f.Invalid {
		t.Run("invalid/"+v.Name, func(t *testing.T) {
			want := errByName(v.Error)
			if _, err := ParseChange(mustHex(v.Blob)); want == nil || !errors.Is(err, want) {
				t.Fatalf("got %v, want %s", err, v.Error)
			}
		})
	}
}

// historyToVector folds history and records the state and report.
func historyToVector(t testing.TB, typ ObjectType, history []*Change) historyVector {
	state, rep := foldAny(t, typ, history[0].ID(), history, delegates)
	out, err := json.MarshalIndent(state, "    ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	v := historyVector{Type: typ, Object: history[0].ID(), Delegates: delegates, State: out}
	for _, c := range history {
		v.Changes = append(v.Changes, historyChange{c.ID(), changeJSON(t, c), hex.EncodeToString(c.Marshal())})
	}
	for _, r := range rep.Rejected {
		v.Rejected = append(v.Rejected, rejectedVector{r.ID, errName(r.Err)})
	}
	for _, s := range rep.Skipped {
		v.Skipped = append(v.Skipped, skippedVector{s.Change, s.Action, s.Type, errName(s.Err)})
	}
	return v
}

// foldAny folds an issue or a patch.
func foldAny(t testing.TB, typ ObjectType, object ObjectID, set []*Change, d Delegates) (any, Report) {
	var state any
	var rep Report
	var err error
	if typ == TypePatch {
		state, rep, err = FoldPatch(object, set, d)
	} else {
		state, rep, err = FoldIssue(object, set, d)
	}
	if err != nil {
		t.Fatal(err)
	}
	return state, rep
}

func checkHistoryVector(t *testing.T, v historyVector) {
	var set []*Change
	for _, hc := range v.Changes {
		c, err := ParseChange(mustHex(hc.Blob))
		if err != nil {
			t.Fatal(err)
		}
		if c.ID() != hc.ID || !jsonEqual(changeJSON(t, c), hc.Fields) {
			t.Fatalf("change %s: id %s or fields differ", hc.ID, c.ID())
		}
		set = append([]*Change{c}, set...) // reversed: order must not matter
	}
	is, rep := foldAny(t, v.Type, v.Object, set, Delegates(v.Delegates))
	state, _ := json.Marshal(is)
	if !jsonEqual(state, v.State) {
		t.Fatalf("state:\n got %s\nwant %s", state, v.State)
	}
	var rejected []rejectedVector
	for _, r := range rep.Rejected {
		rejected = append(rejected, rejectedVector{r.ID, errName(r.Err)})
	}
	var skipped []skippedVector
	for _, s := range rep.Skipped {
		skipped = append(skipped, skippedVector{s.Change, s.Action, s.Type, errName(s.Err)})
	}
	if !reflect.DeepEqual(rejected, v.Rejected) || !reflect.DeepEqual(skipped, v.Skipped) {
		t.Fatalf("report: rejected %v skipped %v; vector says %v, %v", rejected, skipped, v.Rejected, v.Skipped)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func checkHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got  %s\n want %s", what, g, want)
	}
}
