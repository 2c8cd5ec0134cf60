package collab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ChangeID identifies a change: SHA-256 of its signed bytes. Its text form
// is 64 lowercase hex digits; like a git object id it may be abbreviated to
// any unique prefix (ResolveChangeID). It has the size of the heads of an
// ActivityAnnouncement (protocol/wire), which carry change ids.
type ChangeID [sha256.Size]byte

// ObjectID is the id of an object: the id of its first (root) change.
type ObjectID = ChangeID

// String returns the id in lowercase hex.
func (id ChangeID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for logs and listings.
func (id ChangeID) Short() string { return id.String()[:12] }

// IsZero reports whether id is the zero value (no change has it).
func (id ChangeID) IsZero() bool { return id == ChangeID{} }

// Compare orders ids bytewise (the same order as their hex forms).
func (id ChangeID) Compare(other ChangeID) int { return bytes.Compare(id[:], other[:]) }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (id ChangeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseChangeID.
func (id *ChangeID) UnmarshalText(b []byte) error {
	v, err := ParseChangeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseChangeID parses the full 64-digit lowercase hex form.
func ParseChangeID(s string) (ChangeID, error) {
	var id ChangeID
	if len(s) != 2*len(id) || strings.ToLower(s) != s {
		return id, invalid("change id %q is not %d lowercase hex digits", truncate(s), 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ChangeID{}, invalid("change id %q is not hex", truncate(s))
	}
	return id, nil
}

// ResolveChangeID finds the one id among ids whose text form starts with
// prefix (at least MinPrefixLen lowercase hex digits), as git resolves an
// abbreviated object id. It returns ErrNotFound or ErrAmbiguous otherwise.
func ResolveChangeID(prefix string, ids []ChangeID) (ChangeID, error) {
	if len(prefix) < MinPrefixLen || len(prefix) > 2*sha256.Size || strings.Trim(prefix, "0123456789abcdef") != "" {
		return ChangeID{}, invalid("change id prefix %q is not %d to %d lowercase hex digits", truncate(prefix), MinPrefixLen, 2*sha256.Size)
	}
	var found ChangeID
	n := 0
	for _, id := range ids {
		if strings.HasPrefix(id.String(), prefix) && (n == 0 || id != found) {
			found = id
			n++
		}
	}
	switch n {
	case 0:
		return ChangeID{}, fmt.Errorf("%w: %s", ErrNotFound, prefix)
	case 1:
		return found, nil
	}
	return ChangeID{}, fmt.Errorf("%w: %s matches %d changes", ErrAmbiguous, prefix, n)
}

// RefPrefix starts the refs of collaborative objects inside a namespace.
const RefPrefix = "refs/cobs/"

// RefName returns the ref, inside an author's namespace, of the author's
// latest change to an object: "refs/cobs/<type>/<object id in hex>". The
// full name in a replica is refs/namespaces/<author>/ followed by this.
func RefName(typ ObjectType, object ObjectID) string {
	return RefPrefix + string(typ) + "/" + object.String()
}

// ParseRefName is the inverse of RefName. It accepts only defined object
// types and full ids.
func ParseRefName(name string) (ObjectType, ObjectID, error) {
	rest, ok := strings.CutPrefix(name, RefPrefix)
	if !ok {
		return "", ChangeID{}, invalid("ref %q does not start with %q", truncate(name), RefPrefix)
	}
	typ, idText, ok := strings.Cut(rest, "/")
	if !ok {
		return "", ChangeID{}, invalid("ref %q has no object id", truncate(name))
	}
	if err := ObjectType(typ).check(); err != nil {
		return "", ChangeID{}, err
	}
	id, err := ParseChangeID(idText)
	if err != nil {
		return "", ChangeID{}, err
	}
	return ObjectType(typ), id, nil
}

// truncate shortens untrusted text quoted in error messages.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
