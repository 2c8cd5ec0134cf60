package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// runCLI runs mecli in-process with the given environment variables.
func runCLI(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code = run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestAuthInitCreatesOnceAndNodeIDAgrees(t *testing.T) {
	root := filepath.Join(t.TempDir(), "node")
	code, out, errOut := runCLI(t, nil, "--root", root, "auth", "init", "--json")
	if code != 0 {
		t.Fatalf("auth init: %d %s", code, errOut)
	}
	var first didResult
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("auth init --json printed %q: %v", out, err)
	}
	if _, err := identity.ParseNodeID(first.DID); err != nil {
		t.Fatalf("auth init printed an invalid did %q: %v", first.DID, err)
	}
	keyBefore, err := os.ReadFile(identity.KeyPath(root))
	if err != nil {
		t.Fatal(err)
	}

	// Again, in text mode: same did, file untouched, and it says so.
	code, out, _ = runCLI(t, nil, "--root", root, "auth", "init")
	if code != 0 || !strings.Contains(out, first.DID) || !strings.Contains(out, "kept") {
		t.Fatalf("second auth init: %d %q", code, out)
	}
	keyAfter, _ := os.ReadFile(identity.KeyPath(root))
	if !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("auth init overwrote the existing key")
	}

	// node id, with the root from the environment and the flag after the command.
	code, out, _ = runCLI(t, map[string]string{identity.RootEnv: root}, "node", "id")
	if code != 0 || strings.TrimSpace(out) != first.DID {
		t.Fatalf("node id via env: %d %q, want %s", code, out, first.DID)
	}
	code, out, _ = runCLI(t, map[string]string{identity.RootEnv: "/nonexistent"}, "node", "id", "--json", "--root", root)
	var viaFlag didResult
	if code != 0 || json.Unmarshal([]byte(out), &viaFlag) != nil || viaFlag.DID != first.DID {
		t.Fatalf("node id --json --root (flag must win over env): %d %q", code, out)
	}
}

func TestNodeIDWithoutIdentity(t *testing.T) {
	root := t.TempDir()
	code, _, errOut := runCLI(t, nil, "--root", root, "node", "id")
	if code == 0 || !strings.Contains(errOut, "mecli auth init") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("node id without identity: code %d, stderr %q (want one line naming 'mecli auth init')", code, errOut)
	}
}

func TestRefusesWorldReadableKey(t *testing.T) {
	root := filepath.Join(t.TempDir(), "node")
	if code, _, _ := runCLI(t, nil, "--root", root, "auth", "init"); code != 0 {
		t.Fatal("auth init failed")
	}
	if err := os.Chmod(identity.KeyPath(root), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "--root", root, "node", "id")
	if code == 0 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("world-readable key: code %d, stderr %q", code, errOut)
	}
}

// A root that group or others may enter is refused by auth init as med
// refuses it, in one line with the fix, and no key is written into it.
func TestAuthInitRefusesAnOpenRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "node")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "--root", root, "auth", "init")
	if code == 0 || !strings.Contains(errOut, "chmod 700 "+root) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("auth init in a 0755 root: code %d, stderr %q (want one line naming 'chmod 700')", code, errOut)
	}
	if _, err := os.Stat(identity.KeyPath(root)); !os.IsNotExist(err) {
		t.Fatalf("auth init wrote a key into a root it refused: %v", err)
	}
	os.Chmod(root, 0o700)
	if code, _, errOut := runCLI(t, nil, "--root", root, "auth", "init"); code != 0 {
		t.Fatalf("auth init after chmod 700: %d %q", code, errOut)
	}
	os.Chmod(root, 0o750) // an existing key in a root opened later: refused too
	if code, _, errOut := runCLI(t, nil, "--root", root, "auth", "init"); code == 0 || !strings.Contains(errOut, "chmod 700") {
		t.Fatalf("auth init with a key in a 0750 root: %d %q", code, errOut)
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "auth init") || !strings.Contains(out, "node id") || !strings.Contains(out, "--root") {
		t.Fatalf("mecli --help: %d %q", code, out)
	}
	code, out, _ = runCLI(t, nil, "auth", "init", "--help")
	if code != 0 || !strings.Contains(out, "identity.key") || !strings.Contains(out, "--json") {
		t.Fatalf("auth init --help: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "node", "id", "--bogus"); code != 2 || !strings.Contains(errOut, "bogus") {
		t.Fatalf("unknown flag: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "--root", t.TempDir(), "node", "id", "extra"); code != 2 || !strings.Contains(errOut, "extra") {
		t.Fatalf("extra argument: %d %q", code, errOut)
	}
}
