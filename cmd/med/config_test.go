package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// writeConfig writes root's config.json.
func writeConfig(tb testing.TB, root, text string) string {
	tb.Helper()
	path := filepath.Join(root, "config.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// An unknown key, a value of the wrong type or a bad value in config.json
// is a usage error (exit 2): one line that names the file and the key,
// before the node starts.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // besides the file's path
	}{
		{`{"alias": "a", "colour": "blue"}`, []string{`unknown key "colour"`, "alias, announce, bootstrap"}},
		{`{"root": "/elsewhere"}`, []string{`unknown key "root"`}},
		{`{"network": "Lab/x"}`, []string{`key "network"`, "invalid network name"}},
		{`{"http": "nowhere"}`, []string{`key "http"`, `"nowhere"`, "host:port"}},
		{`{"replicate": "some"}`, []string{`key "replicate"`, `"some"`, "all or none"}},
		{`{"target-peers": "eight"}`, []string{`key "target-peers"`, "whole number"}},
		{`{"target-peers": 1.5}`, []string{`key "target-peers"`, "whole number"}},
		{`{"relay": "yes"}`, []string{`key "relay"`, "true or false"}},
		{`{"bootstrap": "did:key:z6Mk@127.0.0.1:9000"}`, []string{`key "bootstrap"`, "list of strings"}},
		{`{"bootstrap": ["garbage"]}`, []string{`key "bootstrap"`, "garbage"}},
		{`{"listen": "nowhere"}`, []string{`key "listen"`, `"nowhere"`}},
		{`{"idle-timeout": "soon"}`, []string{`key "idle-timeout"`, "soon"}},
		{`{"min-free": "lots"}`, []string{`key "min-free"`, "lots"}},
		{`{"log-level": "loud"}`, []string{`key "log-level"`, "debug, info"}},
		{`{"log-format": "xml"}`, []string{`key "log-format"`, "text or json"}},
		{`{"alias": "a", "alias": "b"}`, []string{`"alias" given twice`}},
		{`{"alias": "a"} {}`, []string{"data after"}},
		{`{"alias": }`, []string{"invalid JSON"}},
		{`["alias"]`, []string{"not a JSON object"}},
	} {
		root := t.TempDir()
		path := writeConfig(t, root, tc.file)
		var stdout, stderr strings.Builder
		// Cancelled: were the file ignored, the node would stop at once.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		code := run(ctx, []string{"--root", root}, &stdout, &stderr, func(string) string { return "" })
		msg := stderr.String()
		if code != 2 || stdout.Len() != 0 || strings.Count(msg, "\n") != 1 {
			t.Errorf("config %s: exit %d, want 2 and one line on stderr; stdout %q, stderr %q", tc.file, code, stdout.String(), msg)
			continue
		}
		for _, w := range append(tc.want, "med: "+path+": ") {
			if !strings.Contains(msg, w) {
				t.Errorf("config %s: %q does not say %q", tc.file, msg, w)
			}
		}
	}
}

// infoJSON is the part of node.info these tests read.
type infoJSON struct {
	DID             string   `json:"did"`
	Alias           string   `json:"alias"`
	Kind            string   `json:"kind"`
	Network         string   `json:"network"`
	ListenAddresses []string `json:"listen_addresses"`
	Addresses       []string `json:"addresses"`
}

// waitInfo waits until root's daemon answers node.info.
func waitInfo(tb testing.TB, root string) infoJSON {
	tb.Helper()
	var info infoJSON
	testutil.WaitForState(tb, "the daemon of "+root+" to answer node.info", 20*time.Second, func() (bool, string) {
		err := mecliJSON(tb, &info, "--root", root, "node", "status")
		return err == nil, ""
	})
	return info
}

// med and mecli node start read $ROOT/config.json; a flag given on the
// command line wins over the file, and node start passes no defaults of
// its own that would.
func TestConfigFile(t *testing.T) {
	needBinaries(t)
	root := tempRoot(t)
	writeConfig(t, root, `{"alias": "from-file", "listen": "127.0.0.1:0", "relay": true,
		"idle-timeout": "3s", "log-format": "json", "target-peers": 0, "replicate": "none",
		"min-free": "32MiB", "bootstrap": [], "announce": ["127.0.0.1:9999"], "network": "lab"}`)
	for _, tc := range []struct {
		bin       string
		args      []string
		wantAlias string
	}{
		{medBin, []string{"--root", root}, "from-file"},
		{medBin, []string{"--root", root, "--alias", "from-flag"}, "from-flag"},
		{mecliBin, []string{"--root", root, "node", "start"}, "from-file"},
		{mecliBin, []string{"--root", root, "node", "start", "--alias", "from-flag"}, "from-flag"},
	} {
		name := filepath.Base(tc.bin) + " " + strings.Join(tc.args[2:], " ")
		p := startProc(t, name, tc.bin, tc.args...)
		info := waitInfo(t, root)
		if info.Alias != tc.wantAlias || info.Kind != "relay" {
			t.Errorf("%s: alias %q, kind %q; want %q and the file's relay", name, info.Alias, info.Kind, tc.wantAlias)
		}
		if info.Network != "lab" {
			t.Errorf("%s: network %q, not the file's lab", name, info.Network)
		}
		if len(info.Addresses) != 1 || info.Addresses[0] != "127.0.0.1:9999" {
			t.Errorf("%s announces %q, not the file's 127.0.0.1:9999", name, info.Addresses)
		}
		if len(info.ListenAddresses) != 1 || !strings.HasPrefix(info.ListenAddresses[0], "127.0.0.1:") {
			t.Errorf("%s listens on %q, not on the file's 127.0.0.1", name, info.ListenAddresses)
		}
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("%s: exit %d after SIGTERM", name, code)
		}
		first, _, _ := strings.Cut(p.stderr.String(), "\n")
		if !json.Valid([]byte(first)) {
			t.Errorf("%s logs %q, not the file's json format", name, first)
		}
	}
}
