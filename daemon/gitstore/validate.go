package gitstore

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/megaengine/megaengine/protocol/wire"
)

// MaxNamespaceLen bounds a namespace name (a did:key multibase string is 48
// characters).
const MaxNamespaceLen = 128

// CheckOID accepts a full object id: 40 (SHA-1) or 64 (SHA-256) lowercase
// hex digits. Errors wrap ErrInvalid.
func CheckOID(oid string) error {
	if len(oid) != 40 && len(oid) != 64 {
		return invalid("object id %q: %d characters, want 40 or 64", clip(oid), len(oid))
	}
	for i := 0; i < len(oid); i++ {
		if c := oid[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return invalid("object id %q: not lowercase hex", clip(oid))
		}
	}
	return nil
}

func checkOIDs(oids []string) error {
	for _, o := range oids {
		if err := CheckOID(o); err != nil {
			return err
		}
	}
	return nil
}

// CheckNamespace accepts a namespace name: 1 to MaxNamespaceLen ASCII
// letters and digits (a node's did:key in multibase, "z6Mk…"). Errors wrap
// ErrInvalid.
func CheckNamespace(ns string) error {
	if ns == "" || len(ns) > MaxNamespaceLen {
		return invalid("namespace %q: length %d, want 1 to %d", clip(ns), len(ns), MaxNamespaceLen)
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return invalid("namespace %q: only letters and digits are allowed", clip(ns))
		}
	}
	return nil
}

// checkRefName is wire.CheckRefName with errors that wrap ErrInvalid.
func checkRefName(name string) error {
	if err := wire.CheckRefName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// checkBranch accepts a short branch name ("main") whose full name
// refs/heads/<b> passes wire.CheckRefName and that git accepts as a branch
// (not "HEAD", not starting with '-').
func checkBranch(b string) error {
	if b == "" || b == "HEAD" || strings.HasPrefix(b, "-") {
		return invalid("branch name %q", clip(b))
	}
	return checkRefName("refs/heads/" + b)
}

// checkRev accepts a revision from a caller: a full object id or a valid
// ref name.
func checkRev(rev string) error {
	if CheckOID(rev) == nil {
		return nil
	}
	if err := checkRefName(rev); err != nil {
		return invalid("revision %q: neither an object id nor a ref name", clip(rev))
	}
	return nil
}

// absPath returns path made absolute and clean; an absolute path cannot be
// taken for an option.
func absPath(path string) (string, error) {
	if path == "" || strings.ContainsRune(path, 0) {
		return "", invalid("path %q", clip(path))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: path %q: %w", ErrInvalid, clip(path), err)
	}
	return abs, nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
