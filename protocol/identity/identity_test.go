package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
	"golang.org/x/crypto/curve25519"
)

type vectors struct {
	NodeIDs []struct {
		Seed          string `json:"seed"`
		PublicKey     string `json:"public_key"`
		DID           string `json:"did"`
		DIDLegacy     string `json:"did_legacy"`
		X25519Private string `json:"x25519_private"`
		X25519Public  string `json:"x25519_public"`
	} `json:"node_ids"`
	RepoIDs []struct {
		RootCommit       string `json:"root_commit"`
		CreatorPublicKey string `json:"creator_public_key"`
		Multihash        string `json:"multihash"`
		RepoID           string `json:"repo_id"`
	} `json:"repo_ids"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile("../../spec/vectors/identity.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.NodeIDs) == 0 || len(v.RepoIDs) == 0 {
		t.Fatal("vector file has no vectors")
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRFC8032Test1DID(t *testing.T) {
	k, err := KeyFromSeed(unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.ID().String(), "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"; got != want {
		t.Fatalf("did = %s, want %s", got, want)
	}
}

func TestNodeIDVectors(t *testing.T) {
	for _, v := range loadVectors(t).NodeIDs {
		k, err := KeyFromSeed(unhex(t, v.Seed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.ID().PublicKey(), unhex(t, v.PublicKey)) {
			t.Errorf("seed %s: public key mismatch", v.Seed)
		}
		if got := k.ID().String(); got != v.DID {
			t.Errorf("did = %s, want %s", got, v.DID)
		}
		for _, s := range []string{v.DID, v.DIDLegacy} {
			id, err := ParseNodeID(s)
			if err != nil {
				t.Fatalf("parse %s: %v", s, err)
			}
			if id != k.ID() || id.String() != v.DID {
				t.Errorf("parse %s gave %s, want %s", s, id, v.DID)
			}
		}
		if got := hex.EncodeToString(k.X25519Private()); got != v.X25519Private {
			t.Errorf("x25519 private = %s, want %s", got, v.X25519Private)
		}
		if got := hex.EncodeToString(k.X25519Public()); got != v.X25519Public {
			t.Errorf("x25519 public = %s, want %s", got, v.X25519Public)
		}
		// The derived pair must be a real X25519 pair.
		pub, err := curve25519.X25519(k.X25519Private(), curve25519.Basepoint)
		if err != nil || !bytes.Equal(pub, k.X25519Public()) {
			t.Errorf("X25519(private, base) = %x, want %x (%v)", pub, k.X25519Public(), err)
		}
	}
}

func TestRepoIDVectors(t *testing.T) {
	for _, v := range loadVectors(t).RepoIDs {
		creator, err := NodeIDFromPublicKey(unhex(t, v.CreatorPublicKey))
		if err != nil {
			t.Fatal(err)
		}
		id, err := NewRepoID(unhex(t, v.RootCommit), creator)
		if err != nil {
			t.Fatal(err)
		}
		if id.String() != v.RepoID {
			t.Errorf("repo id = %s, want %s", id, v.RepoID)
		}
		if hex.EncodeToString(id.Multihash()) != v.Multihash {
			t.Errorf("multihash = %x, want %s", id.Multihash(), v.Multihash)
		}
		for _, s := range []string{v.RepoID, strings.TrimPrefix(v.RepoID, "did:repo:")} {
			parsed, err := ParseRepoID(s)
			if err != nil || parsed != id {
				t.Errorf("ParseRepoID(%s) = %s, %v", s, parsed, err)
			}
		}
		back, err := RepoIDFromMultihash(id.Multihash())
		if err != nil || back != id {
			t.Errorf("multihash round trip: %v", err)
		}
	}
}

func TestNewRepoIDRejectsBadRootLength(t *testing.T) {
	k, _ := GenerateKey()
	for _, n := range []int{0, 19, 21, 40} {
		if _, err := NewRepoID(make([]byte, n), k.ID()); err == nil {
			t.Errorf("root commit of %d bytes accepted", n)
		}
	}
}

func TestParseNodeIDRejects(t *testing.T) {
	// The identity point (order 1) and a point of order 8: low-order keys.
	lowOrder := []byte{1}
	lowOrder = append(lowOrder, make([]byte, 31)...)
	valid := "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
	cases := map[string]string{
		"empty":           "",
		"no prefix":       "z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",
		"wrong method":    "did:web:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",
		"not base58btc":   "did:key:f6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",
		"bad char 0":      "did:key:z6Mk0wupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",
		"only prefix":     "did:key:z",
		"truncated":       valid[:len(valid)-3],
		"extended":        valid + "1",
		"too long":        "did:key:z" + strings.Repeat("a", 200),
		"low order":       NodeIDPrefix + b58(append([]byte{0xed, 0x01}, lowOrder...)),
		"secp256k1 codec": NodeIDPrefix + b58(append([]byte{0xe7, 0x01}, make([]byte, 33)...)),
		"non-canonical y": NodeIDPrefix + b58(append([]byte{0xed, 0x01}, nonCanonical(t)...)),
	}
	for name, s := range cases {
		if _, err := ParseNodeID(s); !errors.Is(err, ErrMalformedDID) {
			t.Errorf("%s: ParseNodeID(%q) err = %v, want ErrMalformedDID", name, s, err)
		}
	}
}

// nonCanonical returns a non-canonical encoding (y + p for a small y) of a
// valid point outside the small-order subgroup, which lenient decoders accept.
func nonCanonical(t *testing.T) []byte {
	for y := 0; y < 19; y++ {
		// p = 2^255 - 19; little-endian bytes of p + y.
		b := bytes.Repeat([]byte{0xff}, 32)
		b[0] = byte(0xed + y)
		b[31] = 0x7f
		pt, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		if new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) == 0 {
			return b
		}
	}
	t.Fatal("no non-canonical encoding found")
	return nil
}

func b58(b []byte) string { return base58.Encode(b) }

func TestRepoIDRejects(t *testing.T) {
	k, _ := GenerateKey()
	good, _ := NewRepoID(make([]byte, 20), k.ID())
	s := good.String()
	for _, bad := range []string{"", "did:repo:", "did:repo:z", "did:key:" + s[9:], s[:len(s)-2], s + "1", "did:repo:z../../etc", "did:repo:z" + strings.Repeat("1", 130)} {
		if _, err := ParseRepoID(bad); err == nil {
			t.Errorf("ParseRepoID(%q) accepted", bad)
		}
	}
}

func TestParseAddr(t *testing.T) {
	did := "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
	for _, ok := range []string{did + "@127.0.0.1:9000", did + "@[::1]:9001", did + "@example.org:1"} {
		a, err := ParseAddr(ok)
		if err != nil {
			t.Errorf("ParseAddr(%q): %v", ok, err)
			continue
		}
		if a.String() != ok {
			t.Errorf("round trip %q → %q", ok, a.String())
		}
	}
	for _, bad := range []string{"", did, did + "@", did + "@127.0.0.1", did + "@127.0.0.1:0", did + "@127.0.0.1:65536",
		did + "@127.0.0.1:x", did + "@:9000", "did:key:zzz@127.0.0.1:9000", "@127.0.0.1:9000", did + "@a b:1", did + "@::1:9000"} {
		if _, err := ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
	// The legacy did form is accepted and normalised.
	legacy := loadVectors(t).NodeIDs[0].DIDLegacy
	a, err := ParseAddr(legacy + "@127.0.0.1:9000")
	if err != nil || a.ID.String() != did {
		t.Errorf("legacy address: %v, %v", a, err)
	}
}

func TestTwinMapsToSameX25519(t *testing.T) {
	k, _ := GenerateKey()
	p, _ := new(edwards25519.Point).SetBytes(k.ID().PublicKey())
	twin, err := NodeIDFromPublicKey(new(edwards25519.Point).Negate(p).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if twin == k.ID() {
		t.Fatal("negated point equals the original")
	}
	if !bytes.Equal(twin.X25519(), k.ID().X25519()) {
		t.Fatal("twin keys should share the X25519 key (documented in the spec)")
	}
}

func TestKeyFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	k, created, err := LoadOrCreateKey(root)
	if err != nil || !created {
		t.Fatalf("create: %v, created=%v", err, created)
	}
	st, err := os.Stat(KeyPath(root))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %#o, want 0600", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(root)
	if err != nil || created || k2.ID() != k.ID() {
		t.Fatalf("second load: id %s vs %s, created=%v, %v", k2.ID(), k.ID(), created, err)
	}
	data, _ := os.ReadFile(KeyPath(root))
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatalf("key file is not PKCS#8 PEM: %q", data[:min(len(data), 40)])
	}
	// Readable by others: refused, with the file and the fix named.
	if err := os.Chmod(KeyPath(root), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKey(root)
	if err == nil || !strings.Contains(err.Error(), KeyPath(root)) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadKey on a 0644 key: %v", err)
	}
	// ...and never overwritten.
	if _, _, err := LoadOrCreateKey(root); err == nil {
		t.Fatal("LoadOrCreateKey replaced or accepted a world-readable key")
	}
	after, _ := os.ReadFile(KeyPath(root))
	if !bytes.Equal(after, data) {
		t.Fatal("key file changed")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := LoadKey(root); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing key: %v", err)
	}
	for name, content := range map[string]string{
		"not pem":  "hello",
		"bad der":  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"rsa type": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
	} {
		if err := os.WriteFile(KeyPath(root), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(root); err == nil || errors.Is(err, ErrNoKey) {
			t.Errorf("%s: LoadKey = %v", name, err)
		}
	}
}

func TestResolveRoot(t *testing.T) {
	t.Setenv(RootEnv, "/tmp/from-env")
	if r, _ := ResolveRoot("/tmp/from-flag"); r != "/tmp/from-flag" {
		t.Errorf("flag should win: %s", r)
	}
	if r, _ := ResolveRoot(""); r != "/tmp/from-env" {
		t.Errorf("env: %s", r)
	}
	t.Setenv(RootEnv, "")
	t.Setenv("HOME", "/tmp/home")
	if r, _ := ResolveRoot(""); r != "/tmp/home/.megaengine" {
		t.Errorf("default: %s", r)
	}
}

func TestSignVerify(t *testing.T) {
	k, _ := GenerateKey()
	other, _ := GenerateKey()
	sig := k.Sign([]byte("m"))
	if !k.ID().Verify([]byte("m"), sig) {
		t.Fatal("valid signature rejected")
	}
	if other.ID().Verify([]byte("m"), sig) || k.ID().Verify([]byte("n"), sig) || k.ID().Verify([]byte("m"), sig[:10]) {
		t.Fatal("bad signature accepted")
	}
	if !ed25519.Verify(k.ID().PublicKey(), []byte("m"), sig) {
		t.Fatal("not standard ed25519")
	}
}

func TestTextMarshal(t *testing.T) {
	k, _ := GenerateKey()
	b, err := json.Marshal(map[string]NodeID{"did": k.ID()})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]NodeID
	if err := json.Unmarshal(b, &back); err != nil || back["did"] != k.ID() {
		t.Fatalf("json round trip: %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"did":"did:key:zbad"}`), &back); err == nil {
		t.Fatal("bad did accepted in JSON")
	}
}

func TestLoadKeyNamesTheProblem(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	// A directory where the key belongs: said so, not a mode complaint.
	if err := os.Mkdir(KeyPath(root), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKey(root)
	if err == nil || !strings.Contains(err.Error(), "is a directory") || strings.Contains(err.Error(), "mode") || !strings.Contains(err.Error(), KeyPath(root)) {
		t.Fatalf("LoadKey with a directory at %s: %v", KeyPath(root), err)
	}
	if _, _, err := LoadOrCreateKey(root); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("LoadOrCreateKey with a directory at the key: %v", err)
	}
	if err := os.Remove(KeyPath(root)); err != nil {
		t.Fatal(err)
	}
	// A corrupt key file: the error names it.
	for name, content := range map[string]string{
		"not pem": "hello",
		"bad der": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		if err := os.WriteFile(KeyPath(root), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(root); err == nil || !strings.Contains(err.Error(), KeyPath(root)) {
			t.Errorf("%s: LoadKey = %v, want an error naming %s", name, err, KeyPath(root))
		}
	}
}

func TestPrepareRoot(t *testing.T) {
	// Created when missing, with its parents, mode 0700.
	root := filepath.Join(t.TempDir(), "a", "root")
	if err := PrepareRoot(root); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(root); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("created root: %v, %v", st, err)
	}
	if err := PrepareRoot(root); err != nil {
		t.Fatalf("existing 0700 root: %v", err)
	}
	// Group or others may enter: refused, with the fix named.
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701} {
		if err := os.Chmod(root, mode); err != nil {
			t.Fatal(err)
		}
		err := PrepareRoot(root)
		if err == nil || !strings.Contains(err.Error(), "chmod 700 "+root) {
			t.Errorf("root mode %#o: %v", mode, err)
		}
	}
	// LoadOrCreateKey, where the daemon and auth init start, refuses it too.
	if _, _, err := LoadOrCreateKey(root); err == nil || !strings.Contains(err.Error(), "chmod 700 "+root) {
		t.Errorf("LoadOrCreateKey in a root of mode 0701: %v", err)
	}
	if _, err := os.Stat(KeyPath(root)); !os.IsNotExist(err) {
		t.Errorf("a key was written into a refused root: %v", err)
	}
	// A file where the root should be.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PrepareRoot(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("root is a file: %v", err)
	}
}
