package wire

import (
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
)

// Limits. Every size that a peer controls is checked against one of these
// before it is decoded or allocated: the total input size is checked before
// the CBOR decoder runs (so no string or array can be larger than the input),
// and per-field limits are checked by each body's Validate.
const (
	// MaxEnvelopeSize bounds an encoded envelope. Envelopes larger than
	// DatagramBudget travel alone on a unidirectional QUIC stream; this
	// bounds what a receiver reads from one.
	MaxEnvelopeSize = 64 << 10

	// DatagramBudget is the largest encoded envelope sent as one QUIC
	// datagram; anything larger goes on a stream with the same encoding.
	// quic-go delivers 1243-byte payloads before path-MTU discovery, so 1200
	// leaves room for framing.
	DatagramBudget = 1200

	// MaxFutureSkew is how far an envelope's timestamp may be ahead of the
	// receiver's clock.
	MaxFutureSkew = 5 * time.Minute

	// MaxAge is how old an envelope may be. Older ones are dropped even if
	// authentic: nodes re-announce far more often than this.
	MaxAge = 24 * time.Hour

	// DefaultTTL is the hop budget of a new envelope.
	DefaultTTL = 16

	// MaxTTL is the largest TTL accepted from the wire.
	MaxTTL = 16
)

// NodeAnnouncement limits.
const (
	MaxAliasLen   = 64  // bytes of UTF-8
	MaxAddresses  = 8   // entries in the address list
	MaxAddressLen = 128 // bytes per "host:port"
	MaxVersionLen = 32  // bytes of the software version
	MaxFeatures   = 16  // entries in the feature list
	MaxFeatureLen = 32  // bytes per feature name
)

// ActivityAnnouncement limits.
const (
	MaxHeads = 32 // collaboration event ids per announcement
)

// Signed refs limits.
const (
	// MaxRefs bounds the refs of one signed refs document. It equals
	// cborx.MaxArrayElements, the cap of the shared strict decoder, so the
	// decoder and this check agree; a repository with more refs than this
	// cannot be published in version 1.
	MaxRefs = 4096

	// MaxRefNameLen bounds one ref name, in bytes.
	MaxRefNameLen = 1024

	// MaxSignedRefsSize bounds an encoded signed refs document.
	MaxSignedRefsSize = 4 << 20
)

// MaxRefs must not exceed what the shared decoder accepts (compile-time check:
// a negative constant does not convert to uint).
const _ = uint(cborx.MaxArrayElements - MaxRefs)

// Sizes of fixed-length fields.
const (
	signatureLen = 64 // Ed25519
	digestLen    = 32 // SHA-256
	multihashLen = 34 // 0x16 0x20 ‖ sha3-256 digest
	sha1OIDLen   = 20
	sha256OIDLen = 32
)
