package identity

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// MaxAddrLen bounds an address string ("did:key:…@host:port").
const MaxAddrLen = 512

// Addr is a node address: the node's id and where to reach it.
type Addr struct {
	ID       NodeID
	HostPort string // "host:port", host a name, an IPv4 or a bracketed IPv6 address
}

// String returns "did:key:…@host:port".
func (a Addr) String() string { return a.ID.String() + "@" + a.HostPort }

// ParseAddr parses "did:key:…@host:port", the seed's --bootstrap-node form.
func ParseAddr(s string) (Addr, error) {
	if len(s) > MaxAddrLen {
		return Addr{}, fmt.Errorf("address longer than %d characters", MaxAddrLen)
	}
	didPart, hostPort, ok := strings.Cut(s, "@")
	if !ok {
		return Addr{}, fmt.Errorf("address %q: want did:key:…@host:port", s)
	}
	id, err := ParseNodeID(didPart)
	if err != nil {
		return Addr{}, fmt.Errorf("address %q: %w", s, err)
	}
	if err := CheckHostPort(hostPort); err != nil {
		return Addr{}, fmt.Errorf("address %q: %w", s, err)
	}
	return Addr{ID: id, HostPort: hostPort}, nil
}

// CheckHostPort validates "host:port": a non-empty host without spaces or
// control characters and a port in 1–65535.
func CheckHostPort(hostPort string) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if host == "" {
		return fmt.Errorf("empty host in %q", hostPort)
	}
	for _, r := range host {
		if r <= ' ' || r == 0x7f || r == '/' || r == '@' {
			return fmt.Errorf("invalid character %q in host %q", r, host)
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number in 1-65535", port)
	}
	return nil
}
