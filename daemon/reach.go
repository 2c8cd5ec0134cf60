package daemon

import (
	"net/netip"
	"slices"

	"github.com/megaengine/megaengine/daemon/relay"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/nat"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Reachability and relays, on the node's side (spec/nat.md): which
// addresses the node announces, the private addresses peers on the same
// private network shared, the relays the node keeps, a relay's limits.

// reachState is guarded by Node.mu.
type reachState struct {
	announced []string                     // the addresses of the last NodeAnnouncement
	lan       map[identity.NodeID][]string // private addresses peers shared over a private connection
}

// Relay limits (spec/nat.md §3): a relay takes many more inbound
// connections than a normal node, which keeps the defaults.
const (
	RelayMaxInbound  = 1024
	RelayMaxOutbound = 64
	// relayTarget is how many relays a node that is not one keeps connected.
	relayTarget = 3
)

func (n *Node) relayLimits(c *transport.Config) {
	if !n.cfg.Relay {
		return
	}
	c.MaxInbound, c.MaxOutbound = RelayMaxInbound, RelayMaxOutbound
	c.Limits.MaxPending, c.Limits.MaxPendingPerNet = 128, 64
}

// replicatePolicy is the configured policy; a relay replicates everything.
func (n *Node) replicatePolicy() string {
	if n.cfg.Relay {
		return ReplicateAll
	}
	return n.cfg.Replicate
}

// relayTarget is how many relays the dialer keeps: none for a relay.
func (n *Node) relayTarget() int {
	if n.cfg.Relay {
		return 0
	}
	return relayTarget
}

// isRelay reports whether id announced itself as a relay.
func (n *Node) isRelay(id identity.NodeID) bool {
	na, _, ok := n.store.Node(id)
	return ok && na.Kind == wire.KindRelay
}

// connectedRelays lists the relays connected now.
func (n *Node) connectedRelays() []identity.NodeID {
	var out []identity.NodeID
	for _, p := range n.tr.Peers() {
		if n.isRelay(p.ID) {
			out = append(out, p.ID)
		}
	}
	return out
}

// relayCandidates lists up to max relays from the routing table worth
// dialling (bootstrap nodes are dialled anyway, first).
func (n *Node) relayCandidates(max int, skip func(identity.NodeID) bool) []identity.Addr {
	relays := func(id identity.NodeID) bool { return !n.isRelay(id) || skip(id) }
	return n.dialCandidates(max, relays)
}

// onObserved is called when a peer told us the address it sees us at.
func (n *Node) onObserved(p *transport.Peer) {
	if lan := p.LAN(); len(lan) > 0 {
		n.mu.Lock()
		if n.reach.lan == nil {
			n.reach.lan = map[identity.NodeID][]string{}
		}
		n.reach.lan[p.ID] = lan
		n.mu.Unlock()
	}
	n.reannounce()
}

// reannounce publishes a new NodeAnnouncement if the addresses to announce
// changed.
func (n *Node) reannounce() {
	addrs := n.announceAddrs()
	n.mu.Lock()
	same := slices.Equal(addrs, n.reach.announced)
	n.mu.Unlock()
	if same {
		return
	}
	if err := n.announceSelf(); err != nil {
		n.log.Warn("announcing the new addresses failed", "err", err)
	}
}

// announceAddrs are the addresses others can use (spec/nat.md §2):
// --announce if given; else the public addresses of the socket, with the
// address peers observe once a relay's dial-back proved it reachable; the
// private ones only while the node talks to no public node at all (a
// private network of its own), since a node on the public network never
// announces private addresses.
func (n *Node) announceAddrs() []string {
	if len(n.cfg.Announce) > 0 {
		return n.cfg.Announce[:min(len(n.cfg.Announce), wire.MaxAddresses)]
	}
	var public, private []string
	for _, a := range n.tr.LocalAddrs() {
		if ap, err := netip.ParseAddrPort(a); err == nil && nat.Public(ap.Addr()) {
			public = append(public, a)
		} else {
			private = append(private, a)
		}
	}
	if n.relay.Reachability() == relay.Reachable {
		for _, o := range n.tr.ObservedAddrs() {
			if nat.Public(o.Addr()) && !slices.Contains(public, o.String()) {
				public = append(public, o.String())
			}
		}
	}
	if len(public) == 0 && !n.onPublicNetwork() {
		public = private
	}
	return public[:min(len(public), wire.MaxAddresses)]
}

// onPublicNetwork reports whether the node talks to public nodes: a
// bootstrap node or a peer has a public address, or a peer sees us at one.
func (n *Node) onPublicNetwork() bool {
	for _, b := range n.cfg.Bootstrap {
		if ap, err := netip.ParseAddrPort(b.HostPort); err == nil && nat.Public(ap.Addr()) {
			return true
		}
	}
	for _, p := range n.tr.Peers() {
		if nat.Public(p.RemoteAddrPort().Addr()) || nat.Public(p.Observed().Addr()) {
			return true
		}
	}
	return false
}

// dialAddrs are the addresses to dial id at: the private ones it shared
// over a private connection first, then the announced ones.
func (n *Node) dialAddrs(id identity.NodeID) []string {
	n.mu.Lock()
	out := slices.Clone(n.reach.lan[id])
	n.mu.Unlock()
	if na, _, ok := n.store.Node(id); ok {
		for _, a := range na.Addresses {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
