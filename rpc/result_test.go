package rpc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// resultShapes has a nil slice in every place a result can hold one.
type resultShapes struct {
	Top        []string          `json:"top"`
	Empty      []string          `json:"empty"`
	Omitted    []string          `json:"omitted,omitempty"`
	Elems      []RepoInfo        `json:"elems"`
	Ptr        *RepoInfo         `json:"ptr"`
	NilPtr     *RepoInfo         `json:"nil_ptr"`
	Map        map[string][]int  `json:"map"`
	NilMap     map[string]string `json:"nil_map"`
	Iface      any               `json:"iface"`
	Array      [1]NamespaceRefs  `json:"array"`
	Bytes      []byte            `json:"bytes"`
	Raw        json.RawMessage   `json:"raw"`
	Time       time.Time         `json:"time"`
	When       *time.Time        `json:"when,omitempty"`
	Skipped    []string          `json:"-"`
	hidden     []string
	RepoDetail // embedded: its fields are promoted
}

func TestEncodeResultNilSlices(t *testing.T) {
	in := resultShapes{
		Empty:  []string{},
		Elems:  []RepoInfo{{RepoID: repoTiny}},
		Ptr:    &RepoInfo{RepoID: repoNotes},
		Map:    map[string][]int{"a": nil, "b": {1}},
		Iface:  NamespaceRefs{Node: didBob},
		Raw:    json.RawMessage(`{"kept":null}`),
		Time:   at(10, 0, 0),
		hidden: nil,
	}
	in.RepoDetail.Namespaces = []NamespaceRefs{{Node: didCarol}}
	before := fmt.Sprintf("%#v", in)

	b, err := encodeResult(in)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"top", "empty", "elems.0.delegates", "elems.0.holders", "elems.0.clones", "ptr.delegates", "ptr.clones",
		"map.a", "iface.refs", "array.0.refs", "delegates", "holders", "clones", "namespaces.0.refs",
	} {
		if v := lookup(got, path); !reflect.DeepEqual(v, []any{}) {
			t.Errorf("%s = %#v, want []", path, v)
		}
	}
	if v := lookup(got, "map.b"); !reflect.DeepEqual(v, []any{1.0}) {
		t.Errorf("map.b = %#v, want [1]", v)
	}
	for _, key := range []string{"nil_ptr", "nil_map", "bytes"} {
		if v, ok := got[key]; !ok || v != nil {
			t.Errorf("%s = %#v, want null (not a list)", key, v)
		}
	}
	for _, key := range []string{"omitted", "when", "last_sync", "Skipped", "hidden"} {
		if _, ok := got[key]; ok {
			t.Errorf("%s is in the result: %s", key, b)
		}
	}
	mustContain(t, string(b), `"raw":{"kept":null}`)
	mustContain(t, string(b), `"time":"2026-11-21T10:00:00Z"`)
	if after := fmt.Sprintf("%#v", in); after != before || in.Ptr.Delegates != nil || in.Map["a"] != nil {
		t.Errorf("encodeResult changed its input:\nbefore %s\nafter  %s", before, after)
	}
}

// lookup follows a dotted path of keys and indexes in decoded JSON.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			fmt.Sscan(k, &i)
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func TestEncodeResultPlainValues(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{[]Peer(nil), "[]"},
		{[]string{"a"}, `["a"]`},
		{"done", `"done"`},
		{SubscribeResult{Subscribed: true}, `{"subscribed":true}`},
		{&SyncResult{RepoID: repoTiny}, `{"repo_id":"` + repoTiny + `","updated":false,"namespaces":0,"bytes":0}`},
		{map[string][]string{"x": nil}, `{"x":[]}`},
	} {
		b, err := encodeResult(tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("encodeResult(%#v) = %s, %v; want %s", tc.in, b, err, tc.want)
		}
	}
}

// A type that refers to itself is encoded without looping.
type tree struct {
	Name     string  `json:"name"`
	Children []*tree `json:"children"`
	Next     *tree   `json:"next,omitempty"`
}

func TestEncodeResultRecursiveType(t *testing.T) {
	b, err := encodeResult(tree{Name: "a", Children: []*tree{{Name: "b"}}, Next: &tree{Name: "c"}})
	want := `{"name":"a","children":[{"name":"b","children":[]}],"next":{"name":"c","children":[]}}`
	if err != nil || string(b) != want {
		t.Errorf("got %s, %v; want %s", b, err, want)
	}
}

// A Service that leaves lists nil — whole results (the fake's empty mode)
// or lists inside them (carol's features, the notes' clones, tiny's
// namespaces in the fixture) — gives [] everywhere: no result holds a null.
func TestResultsHaveNoNull(t *testing.T) {
	for _, empty := range []bool{true, false} {
		f := newFake()
		f.empty = empty
		ts := startServer(t, f)
		checkNoNull(t, ts.raw(t), empty)
	}
}

func checkNoNull(t *testing.T, rc *rawConn, empty bool) {
	t.Helper()
	for i, req := range []struct{ method, params string }{
		{MethodNodeInfo, ""},
		{MethodNodePeers, ""},
		{MethodNodeList, ""},
		{MethodRepoList, ""},
		{MethodRepoShow, `{"repo_id":"` + repoTiny + `"}`},     // nil namespaces
		{MethodRepoSeed, `{"repo_id":"` + repoNotes + `"}`},    // nil clones
		{MethodRepoPublish, `{"repo_id":"` + repoNotes + `"}`}, // nil refs (empty mode)
	} {
		if req.method == MethodRepoPublish && !empty {
			continue // an error in the fixture
		}
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q`, i, req.method)
		if req.params != "" {
			msg += `,"params":` + req.params
		}
		rc.send(msg + "}\n")
		r := decodeResponse(t, rc.line())
		if r.Error != nil {
			t.Fatalf("%s (empty %v): %+v", req.method, empty, r.Error)
		}
		if strings.Contains(string(r.Result), "null") {
			t.Errorf("%s (empty %v): result %s holds a null", req.method, empty, r.Result)
		}
	}
}
