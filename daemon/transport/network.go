package transport

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
)

// alertNoApplicationProtocol is TLS alert 120 (RFC 7301 §3.2); QUIC carries
// a TLS alert as the transport error code 0x100 + alert (RFC 9001 §4.8).
const alertNoApplicationProtocol = 120

// networkError turns a dial error caused by a peer that speaks no common
// ALPN into one wrapping ErrNetwork that names this node's network; other
// errors are returned as they are.
func (t *Transport) networkError(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode == quic.TransportErrorCode(0x100+alertNoApplicationProtocol) {
		return fmt.Errorf("%w: this node is on network %q (ALPN %q) and the peer is not: %w",
			ErrNetwork, t.cfg.Network, t.tlsC.NextProtos[0], err)
	}
	var ae tls.AlertError
	if errors.As(err, &ae) && ae == alertNoApplicationProtocol {
		return fmt.Errorf("%w: this node is on network %q and the peer is not: %w", ErrNetwork, t.cfg.Network, err)
	}
	return err
}
