package daemon

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// The node.* and events.* methods of rpc.Service.

var _ rpc.Service = (*Node)(nil)

func kindName(k wire.NodeKind) string {
	if k == wire.KindRelay {
		return rpc.KindRelay
	}
	return rpc.KindNormal
}

// NodeInfo implements rpc.Service.
func (n *Node) NodeInfo(context.Context) (rpc.NodeInfo, error) {
	kind := rpc.KindNormal
	if n.cfg.Relay {
		kind = rpc.KindRelay
	}
	n.mu.Lock()
	known := len(n.known)
	n.mu.Unlock()
	ds := n.DiskState()
	return rpc.NodeInfo{
		DID:             n.ID().String(),
		Alias:           n.cfg.Alias,
		ListenAddresses: []string{n.tr.LocalAddr().String()},
		Addresses:       n.announceAddrs(),
		Kind:            kind,
		Network:         n.tr.Network(),
		Reachability:    n.relay.Reachability().String(),
		Version:         rpc.Version,
		ProtocolVersion: wire.ProtocolVersion,
		StartedAt:       n.started,
		UptimeSeconds:   time.Since(n.started).Seconds(),
		Root:            n.cfg.Root,
		Socket:          n.SocketPath(),
		Peers:           len(n.tr.Peers()),
		KnownNodes:      known,
		Disk:            rpc.DiskInfo{FreeBytes: ds.Free, TotalBytes: ds.Total, FloorBytes: ds.Floor, Low: ds.Low},
	}, nil
}

func (n *Node) peerInfo(p *transport.Peer) rpc.Peer {
	out := rpc.Peer{
		DID:         p.ID.String(),
		RemoteAddr:  p.Remote.String(),
		Direction:   p.Direction(),
		Path:        p.Path(),
		Address:     p.Remote.String(),
		Kind:        rpc.KindNormal,
		ConnectedAt: p.ConnectedAt,
		Score:       n.gossip.Score(p.ID),
	}
	if na, _, ok := n.store.Node(p.ID); ok {
		out.Alias, out.Addresses, out.Kind = na.Alias, na.Addresses, kindName(na.Kind)
	}
	return out
}

// NodePeers implements rpc.Service.
func (n *Node) NodePeers(context.Context) ([]rpc.Peer, error) {
	peers := n.tr.Peers()
	out := make([]rpc.Peer, 0, len(peers))
	for _, p := range peers {
		out = append(out, n.peerInfo(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DID < out[j].DID })
	return out, nil
}

// NodeList implements rpc.Service.
func (n *Node) NodeList(context.Context) ([]rpc.NodeEntry, error) {
	out := []rpc.NodeEntry{}
	err := n.store.EachNode(func(a store.Announcement, na *wire.NodeAnnouncement) error {
		e := rpc.NodeEntry{
			DID:         a.Origin.String(),
			Alias:       na.Alias,
			Addresses:   na.Addresses,
			Kind:        kindName(na.Kind),
			Version:     na.Version,
			Features:    na.Features,
			AnnouncedAt: time.UnixMilli(int64(a.Timestamp)),
			Connected:   n.tr.Peer(a.Origin) != nil,
			Self:        a.Origin == n.ID(),
		}
		e.LastSeen = e.AnnouncedAt
		if t, ok, _ := n.store.LastSeen(a.Origin); ok && t.After(e.LastSeen) {
			e.LastSeen = t
		}
		if e.Self || e.Connected {
			e.LastSeen = time.Now()
		}
		out = append(out, e)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Self != out[j].Self {
			return out[i].Self
		}
		return out[i].DID < out[j].DID
	})
	return out, err
}

// NodeConnect implements rpc.Service.
func (n *Node) NodeConnect(ctx context.Context, p rpc.ConnectParams) (rpc.Peer, error) {
	var peer *transport.Peer
	addr, err := identity.ParseAddr(p.Addr)
	if id, idErr := identity.ParseNodeID(p.Addr); idErr == nil {
		// A did:key without an address: find a way (spec/nat.md §4).
		addr = identity.Addr{ID: id, HostPort: "(found through relays)"}
		peer, err = n.connectID(ctx, id)
	} else if err != nil {
		return rpc.Peer{}, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	} else {
		peer, err = n.tr.Dial(ctx, addr)
	}
	if err != nil {
		return rpc.Peer{}, dialError(addr, err)
	}
	return n.peerInfo(peer), nil
}

// dialError says in one line why a dial to addr failed, naming the likely
// cause rather than QUIC's words.
func dialError(addr identity.Addr, err error) error {
	var app *quic.ApplicationError
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	switch {
	case errors.Is(err, transport.ErrSelf):
		return rpc.Errorf(rpc.CodeInvalidArgument, "%s is this node", addr.ID)
	case errors.As(err, &app) && app.ErrorCode == transport.CodeHandshake:
		return rpc.Errorf(rpc.CodeUnavailable, "connecting to %s: the node at %s refused the handshake: it is most likely another node than %s", addr, addr.HostPort, addr.ID.Short())
	case errors.As(err, &app) && app.ErrorCode == transport.CodeRefused:
		return rpc.Errorf(rpc.CodeUnavailable, "connecting to %s: that node refuses this one (banned for misbehaviour, for a while)", addr)
	case errors.As(err, &app) && app.ErrorCode == transport.CodeBusy:
		return rpc.Errorf(rpc.CodeUnavailable, "connecting to %s: that node has no free connection slot; try later", addr)
	case errors.As(err, &idle), errors.As(err, &hs), errors.Is(err, context.DeadlineExceeded):
		return rpc.Errorf(rpc.CodeTimeout, "connecting to %s: nothing answered at %s", addr, addr.HostPort)
	}
	return rpc.Errorf(rpc.CodeUnavailable, "%v", err)
}

// Subscribe implements rpc.Service.
func (n *Node) Subscribe(types []string) (<-chan rpc.Event, func()) {
	return n.events.subscribe(types)
}
