package wire

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// NodeKind is the role a node announces. Like MsgType it mirrors the CBOR
// unsigned integer, so any value decodes and Validate rejects unknown ones.
type NodeKind uint64

// Node kinds. ONLY APPEND TO THIS LIST; numbers are never reused.
const (
	KindNormal NodeKind = 0
	KindRelay  NodeKind = 1
)

// String returns "normal", "relay", or the number for unknown kinds.
func (k NodeKind) String() string {
	switch k {
	case KindNormal:
		return "normal"
	case KindRelay:
		return "relay"
	}
	return "NodeKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// NodeAnnouncement (type 1) tells the network that a node exists, how to
// reach it and what it is. Its subject is "": a node's newest announcement
// replaces the older ones.
//
// Map keys (ONLY APPEND, never renumber); all are required:
// 1 alias, 2 addresses, 3 kind, 4 version, 5 features.
type NodeAnnouncement struct {
	// Alias is a human-readable name: valid UTF-8 without control
	// characters, at most MaxAliasLen bytes; may be empty.
	Alias string `cbor:"1,keyasint"`
	// Addresses are "host:port" strings where the node listens, in order of
	// preference: at most MaxAddresses, each at most MaxAddressLen bytes and
	// valid by identity.CheckHostPort, no duplicates; may be empty (a node
	// that cannot be dialled).
	Addresses []string `cbor:"2,keyasint"`
	// Kind is KindNormal or KindRelay.
	Kind NodeKind `cbor:"3,keyasint"`
	// Version is the software version: at most MaxVersionLen bytes of
	// printable ASCII without spaces; may be empty.
	Version string `cbor:"4,keyasint"`
	// Features names optional protocol features: at most MaxFeatures names of
	// 1–MaxFeatureLen characters from [a-z0-9-], in strictly ascending
	// bytewise order (sorted, no duplicates), so a set has one encoding.
	Features []string `cbor:"5,keyasint"`
}

// Type returns TypeNodeAnnouncement.
func (*NodeAnnouncement) Type() MsgType { return TypeNodeAnnouncement }

// Subject returns "": one announcement per node.
func (*NodeAnnouncement) Subject() string { return "" }

// Validate checks every field against the rules in the field comments.
func (a *NodeAnnouncement) Validate() error {
	if a == nil {
		return invalid("nil NodeAnnouncement")
	}
	if len(a.Alias) > MaxAliasLen {
		return invalid("alias of %d bytes, max %d", len(a.Alias), MaxAliasLen)
	}
	if !utf8.ValidString(a.Alias) {
		return invalid("alias is not valid UTF-8")
	}
	for _, r := range a.Alias {
		if unicode.IsControl(r) {
			return invalid("alias contains control character %U", r)
		}
	}
	if len(a.Addresses) > MaxAddresses {
		return invalid("%d addresses, max %d", len(a.Addresses), MaxAddresses)
	}
	for i, addr := range a.Addresses {
		if len(addr) > MaxAddressLen {
			return invalid("address %d is %d bytes, max %d", i, len(addr), MaxAddressLen)
		}
		if err := identity.CheckHostPort(addr); err != nil {
			return invalid("address %d: %v", i, err)
		}
		for _, prev := range a.Addresses[:i] {
			if prev == addr {
				return invalid("address %q listed twice", addr)
			}
		}
	}
	if a.Kind != KindNormal && a.Kind != KindRelay {
		return invalid("kind %d is neither 0 (normal) nor 1 (relay)", uint64(a.Kind))
	}
	if len(a.Version) > MaxVersionLen {
		return invalid("version of %d bytes, max %d", len(a.Version), MaxVersionLen)
	}
	for i := 0; i < len(a.Version); i++ {
		if c := a.Version[i]; c <= ' ' || c > '~' {
			return invalid("version contains byte 0x%02x (want printable ASCII, no space)", c)
		}
	}
	if len(a.Features) > MaxFeatures {
		return invalid("%d features, max %d", len(a.Features), MaxFeatures)
	}
	for i, f := range a.Features {
		if err := checkFeature(f); err != nil {
			return err
		}
		if i > 0 && a.Features[i-1] >= f {
			return invalid("features not in strictly ascending order at %q", f)
		}
	}
	return nil
}

func checkFeature(f string) error {
	if f == "" || len(f) > MaxFeatureLen {
		return invalid("feature name of %d bytes, want 1-%d", len(f), MaxFeatureLen)
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return invalid("feature %q: byte 0x%02x is not in [a-z0-9-]", f, c)
		}
	}
	return nil
}

func (a *NodeAnnouncement) encode() ([]byte, error) {
	c := *a
	c.Addresses = orEmpty(c.Addresses)
	c.Features = orEmpty(c.Features)
	return cborx.Marshal(&c)
}

func decodeNodeAnnouncement(b []byte) (*NodeAnnouncement, error) {
	if a, ok := readCanonicalNodeAnnouncement(b); ok {
		return &a, nil
	}
	var a NodeAnnouncement
	if err := cborx.UnmarshalCanonical(b, &a); err != nil {
		return nil, decodeError("NodeAnnouncement", err)
	}
	if a.Addresses == nil || a.Features == nil {
		return nil, fmt.Errorf("decoding NodeAnnouncement: %w: addresses or features null", ErrMalformed)
	}
	return &a, nil
}
