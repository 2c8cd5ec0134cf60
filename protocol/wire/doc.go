// Package wire holds MegaEngine's gossip formats: the signed envelope, the
// announcement bodies it carries (node, repository, activity), and the signed
// refs a node publishes for each repository it holds. It is pure: no sockets,
// no disk, no goroutines; time comes in as an argument.
//
// Everything is CBOR with small integer map keys. What is signed or hashed is
// encoded in core deterministic encoding (cborx.Marshal); everything received
// is decoded strictly (cborx.Unmarshal), and message bodies and signed refs
// must also be canonical, so that one meaning has exactly one id.
//
// Envelope bytes from the network go through Unmarshal, Envelope.Verify and
// Envelope.DecodeBody, in that order (the gossip engine checks its seen set
// between the first two); signed refs go through OpenSignedRefs. Each step
// checks sizes before decoding and decodes strictly, and the signature is
// checked before anything is used. The normative description, with test
// vectors, is spec/wire.md.
package wire

// ProtocolVersion is the envelope version this package writes and the only
// one it accepts.
//
// Changelog (append an entry for every change):
//
//	2026-11-21: version 1. Envelope {1 version, 2 type, 3 origin, 4 timestamp,
//	            5 body, 6 signature, 7 ttl}; NodeAnnouncement,
//	            RepoAnnouncement, ActivityAnnouncement; signed refs.
//	2026-12-02: seed requests (seed.go) on their own stream kind; the
//	            envelope version is unchanged.
const ProtocolVersion = 1

// Domain-separation strings. Each signature covers its domain string, one
// 0x00 byte, then the canonical CBOR of the signed fields, so a signature made
// for one purpose can never be replayed as another.
const (
	GossipDomain     = "megaengine/1 gossip"
	SignedRefsDomain = "megaengine/1 signed-refs"
)

// domainBytes returns domain ‖ 0x00 ‖ payload.
func domainBytes(domain string, payload []byte) []byte {
	b := make([]byte, 0, len(domain)+1+len(payload))
	b = append(b, domain...)
	b = append(b, 0)
	return append(b, payload...)
}
