// Package protocol is the root of MegaEngine's wire formats and pure logic:
// identity (identity), strict CBOR (cborx), the gossip envelope and messages
// (wire) and the Noise IK handshake (handshake). Nothing under protocol/
// opens a socket, and nothing imports the rest of the project.
//
// This package itself holds only the architecture tests.
package protocol
