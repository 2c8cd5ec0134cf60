package transport

// Paths a peer connection takes (node.peers "path").
const (
	PathDirect  = "direct"  // QUIC packets go straight between the two nodes
	PathRelayed = "relayed" // QUIC packets travel inside a relayed stream (spec/nat.md §4)
)

// Path is PathDirect or PathRelayed.
func (p *Peer) Path() string {
	if p.relayed {
		return PathRelayed
	}
	return PathDirect
}
