package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/sourcegraph/jsonrpc2"
)

// FuzzServerStream feeds arbitrary bytes to the server side of the framing:
// it must not panic, and everything it writes back must be well-framed
// JSON-RPC error answers.
func FuzzServerStream(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n",
		"\n\n" + `{"jsonrpc":"2.0","id":"x","method":"node.connect","params":{"addr":"a"}}` + "\r\n{",
		"Content-Length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`,
		"content-length: 3\r\nContent-Type: x\r\n\r\n[1]Content-Length: 2\n\n{}",
		"Content-Length: 99999999999999999999\r\n\r\n",
		`[{"jsonrpc":"2.0"}]` + "\n" + `{"id":null}` + "\n" + `{"jsonrpc":"2.0","id":5,"result":1}`,
		`{"jsonrpc":"2.0","id":1.5,"method":"x"}` + "\n" + `{"jsonrpc":"2.0","id":-3,"method":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := &readerConn{r: bytes.NewReader(data)}
		st := newServerStream(conn)
		for range 1000 {
			// checkRequest let only objects with a string "method" through,
			// so jsonrpc2.Request's decoder must accept every one of them.
			var req jsonrpc2.Request
			if err := st.ReadObject(&req); err != nil {
				break
			}
		}
		checkWritten(t, st.framing, conn.written)
	})
}

// checkWritten parses what a server stream wrote: error answers only, each
// valid JSON in the stream's framing.
func checkWritten(t *testing.T, f framing, out []byte) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		var body []byte
		if f == framingHeader {
			h, err := r.ReadString('\n')
			if err == io.EOF && h == "" {
				return
			}
			n, err2 := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(h, "Content-Length: "), "\r\n"))
			if err != nil || err2 != nil {
				t.Fatalf("bad header %q in %q", h, out)
			}
			if blank, _ := r.ReadString('\n'); blank != "\r\n" {
				t.Fatalf("no blank line after header in %q", out)
			}
			body = make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				t.Fatalf("short body in %q", out)
			}
		} else {
			line, err := r.ReadBytes('\n')
			if err == io.EOF && len(line) == 0 {
				return
			}
			if err != nil {
				t.Fatalf("unterminated line in %q", out)
			}
			body = line
		}
		var resp errorResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.JSONRPC != "2.0" || resp.Error.Code == 0 || resp.Error.Message == "" {
			t.Fatalf("bad error answer %q (%v)", body, err)
		}
	}
}

// FuzzClientStream: the client side must not panic on anything the socket
// carries, nor accept a message over its cap.
func FuzzClientStream(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}` + "\n"))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"event","params":{"type":"peer.connected"}}` + "\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newClientStream(&readerConn{r: bytes.NewReader(data)})
		for range 1000 {
			var v json.RawMessage
			if err := st.ReadObject(&v); err != nil {
				return
			}
			if len(v) > MaxResponseSize {
				t.Fatalf("accepted %d bytes", len(v))
			}
		}
	})
}

func TestFramingDetection(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want framing
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n", framingLine},
		{" \r\n\t" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}` + "\n", framingLine},
		{"Content-Length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`, framingHeader},
		{"\r\ncontent-length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"node.info"}`, framingHeader},
	} {
		st := newServerStream(&readerConn{r: strings.NewReader(tc.in)})
		var req jsonrpc2.Request
		if err := st.ReadObject(&req); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if st.framing != tc.want || req.Method != "node.info" {
			t.Errorf("%q: framing %v method %q, want %v", tc.in, st.framing, req.Method, tc.want)
		}
	}
}
