package identity

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mr-tron/base58"
	"golang.org/x/crypto/sha3"
)

const (
	// RepoIDPrefix starts every repository id.
	RepoIDPrefix = "did:repo:z"

	// multihash code for sha3-256 and its digest length.
	multihashSHA3_256 = 0x16
	repoDigestLen     = 32
)

// RepoID is a repository id: the multihash (sha3-256) of the root commit id
// followed by the creator's public key. The zero value is not a valid id.
type RepoID [repoDigestLen]byte

// NewRepoID computes the id of the repository whose root commit has the
// binary object id rootCommit (20 bytes for SHA-1, 32 for SHA-256) and whose
// creator is creator. The rule that picks the root commit is in spec/protocol.md.
func NewRepoID(rootCommit []byte, creator NodeID) (RepoID, error) {
	if len(rootCommit) != 20 && len(rootCommit) != 32 {
		return RepoID{}, fmt.Errorf("root commit id is %d bytes, want 20 (sha1) or 32 (sha256)", len(rootCommit))
	}
	h := sha3.New256()
	h.Write(rootCommit)
	h.Write(creator[:])
	var id RepoID
	h.Sum(id[:0])
	return id, nil
}

// Multihash returns the id's binary multihash form: 0x16 0x20 ‖ digest.
// It is the form carried in CBOR messages.
func (id RepoID) Multihash() []byte {
	return append([]byte{multihashSHA3_256, repoDigestLen}, id[:]...)
}

// RepoIDFromMultihash parses the binary multihash form.
func RepoIDFromMultihash(b []byte) (RepoID, error) {
	if len(b) != 2+repoDigestLen || b[0] != multihashSHA3_256 || b[1] != repoDigestLen {
		return RepoID{}, fmt.Errorf("%w: repo id is not a sha3-256 multihash", ErrMalformedDID)
	}
	var id RepoID
	copy(id[:], b[2:])
	return id, nil
}

// IsZero reports whether id is the zero value.
func (id RepoID) IsZero() bool { return id == RepoID{} }

// String returns "did:repo:z…".
func (id RepoID) String() string {
	return RepoIDPrefix + base58.Encode(id.Multihash())
}

// Short returns an abbreviation for logs and listings: the first 12
// characters after "did:repo:", then "…".
func (id RepoID) Short() string {
	return strings.TrimPrefix(id.String(), "did:repo:")[:12] + "…"
}

// LogValue implements slog.LogValuer: a repository id in a log line is its
// Short form (the daemon's logger adds the name).
func (id RepoID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// MarshalText implements encoding.TextMarshaler.
func (id RepoID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseRepoID.
func (id *RepoID) UnmarshalText(b []byte) error {
	v, err := ParseRepoID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseRepoID parses "did:repo:z…". The "did:repo:" prefix may be omitted
// ("z…"), which is how the id appears in mega:// URLs. The result is safe to
// use as a file name: callers name files by String(), never by the input.
func ParseRepoID(s string) (RepoID, error) {
	if len(s) > MaxDIDLen {
		return RepoID{}, fmt.Errorf("%w: longer than %d characters", ErrMalformedDID, MaxDIDLen)
	}
	rest, ok := strings.CutPrefix(s, RepoIDPrefix)
	if !ok {
		rest, ok = strings.CutPrefix(s, "z")
	}
	if !ok || rest == "" {
		return RepoID{}, fmt.Errorf("%w: %q does not start with %q", ErrMalformedDID, s, RepoIDPrefix)
	}
	raw, err := base58.Decode(rest)
	if err != nil {
		return RepoID{}, fmt.Errorf("%w: %q is not base58btc", ErrMalformedDID, s)
	}
	id, err := RepoIDFromMultihash(raw)
	if err != nil {
		return RepoID{}, fmt.Errorf("%w: %q", err, s)
	}
	// base58 has one encoding per byte string, but leading-zero handling makes
	// it worth checking that the id round-trips to the text we were given.
	if !bytes.Equal([]byte(id.String()[len(RepoIDPrefix):]), []byte(rest)) {
		return RepoID{}, fmt.Errorf("%w: %q is not in canonical form", ErrMalformedDID, s)
	}
	return id, nil
}
