package handshake

import (
	"errors"
	"fmt"
)

// Networks (spec/handshake.md §3.2). Nodes of different networks never
// pair: the network name is part of the QUIC ALPN and of the Noise prologue.

// DefaultNetwork is the name of the network a node joins without
// --network. Its ALPN is BaseALPN and its prologue has no suffix, so it is
// the network every version-1 node speaks.
const DefaultNetwork = "main"

// BaseALPN is the TLS application protocol of the default network; a named
// network's is BaseALPN + "/" + name.
const BaseALPN = "megaengine/1"

// MaxNetworkLen bounds a network name.
const MaxNetworkLen = 64

// ErrBadNetwork means a network name is empty, too long or uses a byte
// other than a-z, 0-9, '.', '_' and '-'.
var ErrBadNetwork = errors.New("invalid network name")

// CheckNetwork validates a network name.
func CheckNetwork(name string) error {
	if name == "" || len(name) > MaxNetworkLen {
		return fmt.Errorf("%w: %q: want 1 to %d bytes", ErrBadNetwork, name, MaxNetworkLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: byte %q (allowed: a-z 0-9 . _ -)", ErrBadNetwork, name, c)
		}
	}
	return nil
}

// ALPN is the TLS application protocol of network name ("" means
// DefaultNetwork).
func ALPN(name string) string {
	if name == "" || name == DefaultNetwork {
		return BaseALPN
	}
	return BaseALPN + "/" + name
}

// networkSuffix is what follows the binding in the prologue: nothing for
// the default network, else "/" and the name.
func networkSuffix(name string) string {
	if name == "" || name == DefaultNetwork {
		return ""
	}
	return "/" + name
}
