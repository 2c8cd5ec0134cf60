package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// KeyFileName is the identity file inside the root directory.
	KeyFileName = "identity.key"
	// RootEnv names the environment variable that sets the root directory.
	RootEnv = "MEGAENGINE_ROOT"
	// DefaultRootDir is the root directory's name inside the home directory.
	DefaultRootDir = ".megaengine"
	// maxKeyFileSize bounds what LoadKey reads.
	maxKeyFileSize = 16 << 10
)

// ErrNoKey means the root has no identity yet (test with errors.Is).
var ErrNoKey = errors.New("no identity")

// ResolveRoot returns the root directory: flag if set, else $MEGAENGINE_ROOT,
// else ~/.megaengine. The result is absolute.
func ResolveRoot(flag string) (string, error) {
	root := flag
	if root == "" {
		root = os.Getenv(RootEnv)
	}
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the home directory for the default root (set --root or %s): %w", RootEnv, err)
		}
		root = filepath.Join(home, DefaultRootDir)
	}
	return filepath.Abs(root)
}

// KeyPath returns the identity file of root.
func KeyPath(root string) string { return filepath.Join(root, KeyFileName) }

// LoadKey reads root's identity file. It refuses a file that group or others
// may read, and returns an error wrapping ErrNoKey if there is none. Every
// error names the file.
func LoadKey(root string) (*Key, error) {
	path := KeyPath(root)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (run 'mecli auth init')", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening identity: %w", err)
	}
	switch {
	case st.IsDir():
		return nil, fmt.Errorf("identity file %s is a directory, not a key file; move it away to create a new identity", path)
	case !st.Mode().IsRegular() || st.Size() > maxKeyFileSize:
		return nil, fmt.Errorf("identity file %s is not a regular file of at most %d bytes", path, maxKeyFileSize)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("identity file %s has mode %#o and others may read it; refusing to use it (fix: chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading identity %s: %w", path, err)
	}
	k, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return k, nil
}

// PrepareRoot makes root (mode 0700, with its parents) if it is missing, and
// refuses a root that is not a directory or that group or others may enter:
// it holds the private key and the control socket. The error names the
// directory and the fix.
func PrepareRoot(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("creating root: %w", err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("checking root: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root %s is not a directory", root)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("root %s has mode %#o and group or others may enter it; refusing to use it (fix: chmod 700 %s)", root, perm, root)
	}
	return nil
}

// ParseKeyPEM decodes a PKCS#8 PEM Ed25519 private key.
func ParseKeyPEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#8 key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, want ed25519", k)
	}
	return KeyFromPrivate(priv)
}

// MarshalKeyPEM encodes k as PKCS#8 PEM.
func MarshalKeyPEM(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("encoding identity: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreateKey prepares root (PrepareRoot: made with mode 0700 if
// missing, refused if group or others may enter it), then loads its
// identity, creating a new key if there is none. created reports whether a
// key was made. An existing key is never overwritten. The daemon and
// 'mecli auth init' both start here, so they accept the same roots.
func LoadOrCreateKey(root string) (k *Key, created bool, err error) {
	if err := PrepareRoot(root); err != nil {
		return nil, false, err
	}
	k, err = LoadKey(root)
	if err == nil || !errors.Is(err, ErrNoKey) {
		return k, false, err
	}
	k, err = GenerateKey()
	if err != nil {
		return nil, false, err
	}
	data, err := MarshalKeyPEM(k)
	if err != nil {
		return nil, false, err
	}
	// Write to a temporary file and link it into place: a crash leaves either
	// no key or a whole one, and O_EXCL semantics of link never replace a key
	// that another process created meanwhile.
	path := KeyPath(root)
	tmp, err := os.CreateTemp(root, ".identity-*.tmp")
	if err != nil {
		return nil, false, fmt.Errorf("writing identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("writing identity: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("writing identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("writing identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("writing identity: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err = LoadKey(root) // lost a race with another creator: use theirs
			return k, false, err
		}
		return nil, false, fmt.Errorf("writing identity %s: %w", path, err)
	}
	return k, true, nil
}
