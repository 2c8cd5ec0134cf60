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
// may read, and returns an error wrapping ErrNoKey if there is none.
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
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity file %s has mode %#o and others may read it; refusing to use it (fix: chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	if !st.Mode().IsRegular() || st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("identity file %s is not a regular file of at most %d bytes", path, maxKeyFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading identity %s: %w", path, err)
	}
	return ParseKeyPEM(data)
}

// ParseKeyPEM decodes a PKCS#8 PEM Ed25519 private key.
func ParseKeyPEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("identity file is not a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing identity: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity key is a %T, want ed25519", k)
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

// LoadOrCreateKey loads root's identity, creating root (mode 0700) and a new
// key if there is none. created reports whether a key was made. An existing
// key is never overwritten.
func LoadOrCreateKey(root string) (k *Key, created bool, err error) {
	k, err = LoadKey(root)
	if err == nil || !errors.Is(err, ErrNoKey) {
		return k, false, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating root %s: %w", root, err)
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
