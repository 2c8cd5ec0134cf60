package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const specPath = "../spec/rpc.md"

// specBlock is a fenced code block of spec/rpc.md.
type specBlock struct {
	heading string // the nearest heading above it, without the #s
	level   int    // that heading's level
	info    string // the fence's info string, e.g. "json request"
	text    string
	line    int
}

// specDoc is spec/rpc.md, parsed.
type specDoc struct {
	headings []string // "### node.info" and the like, in order
	sections map[string]string
	blocks   []specBlock
}

func readSpec(t *testing.T) specDoc {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatalf("reading the spec: %v", err)
	}
	doc := specDoc{sections: map[string]string{}}
	var cur string
	var level int
	var inBlock bool
	var blk specBlock
	var body strings.Builder
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case inBlock && strings.HasPrefix(line, "```"):
			blk.text = body.String()
			doc.blocks = append(doc.blocks, blk)
			inBlock = false
		case inBlock:
			body.WriteString(line + "\n")
		case strings.HasPrefix(line, "```"):
			inBlock = true
			body.Reset()
			blk = specBlock{heading: cur, level: level, info: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: i + 1}
		case strings.HasPrefix(line, "#"):
			hashes := len(line) - len(strings.TrimLeft(line, "#"))
			cur, level = strings.TrimSpace(line[hashes:]), hashes
			doc.headings = append(doc.headings, line)
		}
		if !inBlock && cur != "" && !strings.HasPrefix(line, "#") {
			doc.sections[cur] += line + "\n"
		}
	}
	if inBlock {
		t.Fatal("the spec has an unterminated code block")
	}
	return doc
}

var methodHeading = regexp.MustCompile(`^### ([a-z]+\.[a-z_.]+)$`)

// Every method of the table has a "### name" heading in the spec that says
// whether it reads or writes, and every such heading is a method.
func TestSpecDocumentsEveryMethod(t *testing.T) {
	doc := readSpec(t)
	documented := map[string]bool{}
	for _, h := range doc.headings {
		if m := methodHeading.FindStringSubmatch(h); m != nil {
			documented[m[1]] = true
			if _, ok := LookupMethod(m[1]); !ok {
				t.Errorf("spec/rpc.md documents %s, which is not in the method table", m[1])
			}
		}
	}
	for _, m := range Methods() {
		if !documented[m.Name] {
			t.Errorf("method %s has no \"### %s\" heading in spec/rpc.md", m.Name, m.Name)
			continue
		}
		access := "Access: **read**"
		if m.Mutating {
			access = "Access: **write**"
		}
		if !strings.Contains(doc.sections[m.Name], access) {
			t.Errorf("spec/rpc.md's section %s does not say %q", m.Name, access)
		}
		// The table's row: name, access and the summary of the method
		// table (the spec may set its ids in backticks).
		row := "| " + m.Name + " | " + map[bool]string{false: "read", true: "write"}[m.Mutating] + " | " + m.Summary + " |"
		if !slices.Contains(strings.Split(strings.ReplaceAll(doc.sections["5. Methods"], "`", ""), "\n"), row) {
			t.Errorf("the methods table of spec/rpc.md lacks the row %q (backticks aside)", row)
		}
		if !slices.ContainsFunc(doc.blocks, func(b specBlock) bool { return b.heading == m.Name && b.info == "json request" }) {
			t.Errorf("spec/rpc.md's section %s has no request example", m.Name)
		}
	}
	for _, typ := range eventTypes {
		if !strings.Contains(doc.sections["event"], "| `"+typ+"` |") {
			t.Errorf("event type %s is not in the spec's table", typ)
		}
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("the daemon sent bad JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("the spec's example is not JSON: %v\n%s", err, want)
	}
	return reflect.DeepEqual(g, w)
}

// The request examples, sent to a server backed by the fixture, give exactly
// the response and notification examples that follow them. Each section
// runs on a connection of its own.
func TestSpecExamples(t *testing.T) {
	getpid = func() int { return 4242 } // node.stop's example
	t.Cleanup(func() { getpid = os.Getpid })
	doc := readSpec(t)
	f := newFake()
	ts := startServer(t, f)
	var rc *rawConn
	section := ""
	published := false
	checked := 0
	for _, b := range doc.blocks {
		kind, ok := strings.CutPrefix(b.info, "json ")
		if !ok || (kind != "request" && kind != "response" && kind != "notification") {
			continue
		}
		if b.heading != section {
			section, published = b.heading, false
			rc = ts.raw(t)
		}
		switch kind {
		case "request":
			msg := strings.TrimSpace(b.text)
			var compact bytes.Buffer
			if json.Compact(&compact, []byte(msg)) == nil {
				msg = compact.String()
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("spec line %d: a request that is not JSON must be one line", b.line)
			}
			rc.send(msg + "\n")
		case "notification":
			if !published {
				f.publish(fixtureEvents()...)
				published = true
			}
			fallthrough
		case "response":
			got := rc.line()
			if !jsonEqual(t, got, b.text) {
				t.Errorf("spec line %d (%s): the daemon sends\n%s\nthe spec shows\n%s", b.line, section, got, b.text)
			}
			checked++
		}
	}
	if checked < len(Methods()) {
		t.Fatalf("only %d examples checked", checked)
	}
}

// unescape turns the spec's \r and \n notation into bytes.
func unescape(s string) string {
	s = strings.TrimSuffix(s, "\n") // the block's own line end
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(s)
}

// The byte-exact framing examples are exact, byte for byte.
func TestSpecFramingExamples(t *testing.T) {
	doc := readSpec(t)
	ts := startServer(t, newFake())
	pairs := 0
	for i, b := range doc.blocks {
		mode, ok := strings.CutSuffix(strings.TrimPrefix(b.info, "text "), "-request")
		if !ok || (mode != "newline" && mode != "framed") {
			continue
		}
		if i+1 >= len(doc.blocks) || doc.blocks[i+1].info != "text "+mode+"-response" {
			t.Fatalf("spec line %d: a %s request without its response", b.line, mode)
		}
		req, want := unescape(b.text), unescape(doc.blocks[i+1].text)
		if mode == "framed" {
			checkContentLength(t, req)
			checkContentLength(t, want)
		}
		rc := ts.raw(t)
		rc.send(req)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(rc.r, got); err != nil {
			t.Fatalf("spec line %d: %v", b.line, err)
		}
		if string(got) != want {
			t.Errorf("spec line %d: the daemon sends\n%q\nthe spec shows\n%q", b.line, got, want)
		}
		pairs++
	}
	if pairs != 2 {
		t.Fatalf("found %d byte-exact examples, want one per framing", pairs)
	}
}

func checkContentLength(t *testing.T, msg string) {
	t.Helper()
	head, body, ok := strings.Cut(msg, "\r\n\r\n")
	if !ok {
		t.Fatalf("framed example %q has no header end", msg)
	}
	want := "Content-Length: " + strconv.Itoa(len(body))
	if head != want {
		t.Errorf("framed example %q: header %q, want %q", msg, head, want)
	}
}

// The event and progress examples decode strictly into their Go types.
func TestSpecNotificationExamples(t *testing.T) {
	doc := readSpec(t)
	n := 0
	for _, b := range doc.blocks {
		var v any
		switch b.info {
		case "json event":
			v = new(Event)
		case "json progress":
			v = new(Progress)
		default:
			continue
		}
		dec := json.NewDecoder(strings.NewReader(b.text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("spec line %d: %v", b.line, err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("found %d event/progress examples, want 2", n)
	}
}

// The shell one-liners of the spec work with the real tools, when installed.
func TestShellOneLiners(t *testing.T) {
	ts := startServer(t, newFake())
	req := `{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n"
	for _, tool := range [][]string{
		{"socat", "-", "UNIX-CONNECT:" + ts.path},
		{"nc", "-NU", ts.path},
	} {
		t.Run(tool[0], func(t *testing.T) {
			if _, err := exec.LookPath(tool[0]); err != nil {
				t.Skipf("%s is not installed", tool[0])
			}
			cmd := exec.CommandContext(ctxT(t), tool[0], tool[1:]...)
			cmd.Stdin = strings.NewReader(req)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v", cmd.Args, err)
			}
			if r := decodeResponse(t, string(out)); string(r.ID) != "1" || !strings.Contains(string(r.Result), didAlice) {
				t.Fatalf("output %q", out)
			}
		})
	}
}
