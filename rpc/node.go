package rpc

import (
	"context"
	"os"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Node kinds (NodeInfo.Kind, Peer.Kind, NodeEntry.Kind).
const (
	KindNormal = "normal"
	KindRelay  = "relay"
)

// Connection directions (Peer.Direction).
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// NodeInfo is the result of node.info.
type NodeInfo struct {
	// DID is this node's id, "did:key:z6Mk…".
	DID string `json:"did"`
	// Alias is the human name the node announces ("" if none).
	Alias string `json:"alias"`
	// ListenAddresses are the local UDP addresses the node listens on.
	ListenAddresses []string `json:"listen_addresses"`
	// Addresses are the host:port addresses the node announces to others.
	Addresses []string `json:"addresses"`
	// Kind is KindNormal or KindRelay.
	Kind string `json:"kind"`
	// Network is the name of the network the node pairs in ("main" unless
	// med runs with --network); nodes of different networks never connect.
	Network string `json:"network"`
	// Reachability says whether others can dial the node, as a relay's
	// dial-back found: "reachable", "unreachable" (behind NAT or a
	// firewall: reached through relays) or "unknown" (spec/nat.md §2).
	Reachability string `json:"reachability"`
	// Version is the daemon's version; the server fills in Version when
	// the Service leaves it empty.
	Version string `json:"version"`
	// ProtocolVersion is the peer-to-peer protocol version spoken.
	ProtocolVersion int `json:"protocol_version"`
	// StartedAt is when the daemon started.
	StartedAt time.Time `json:"started_at"`
	// UptimeSeconds is the time since StartedAt, in seconds.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Root is the node's root directory.
	Root string `json:"root"`
	// Socket is the path of the control socket.
	Socket string `json:"socket"`
	// Peers is the number of connected peers.
	Peers int `json:"peers"`
	// KnownNodes is the number of nodes in the routing table.
	KnownNodes int `json:"known_nodes"`
	// Disk is the free space of the node's root.
	Disk DiskInfo `json:"disk"`
}

// DiskInfo is the free space of the node's root filesystem, as the node's
// free-space guard last read it.
type DiskInfo struct {
	// FreeBytes and TotalBytes are the filesystem's free and total bytes.
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
	// FloorBytes is the free space below which the node accepts no new
	// objects or announcements from the network.
	FloorBytes uint64 `json:"floor_bytes"`
	// Low is true while the free space is below the floor.
	Low bool `json:"low"`
}

// Peer is a connected node, an element of node.peers' result and the result
// of node.connect.
type Peer struct {
	// DID is the peer's id, proven by the handshake.
	DID string `json:"did"`
	// Alias is the alias the peer announced ("" if unknown).
	Alias string `json:"alias"`
	// Addresses are the host:port addresses the peer announces.
	Addresses []string `json:"addresses"`
	// RemoteAddr is the address the connection comes from or goes to.
	RemoteAddr string `json:"remote_addr"`
	// Direction is DirectionInbound or DirectionOutbound.
	Direction string `json:"direction"`
	// Path is "direct" (packets go straight between the nodes, perhaps
	// through a punched hole) or "relayed" (inside a relay's stream).
	Path string `json:"path"`
	// Address is where the connection's packets go: the peer's ip:port,
	// or "relayed:…" for a relayed connection.
	Address string `json:"address"`
	// Kind is KindNormal or KindRelay ("" before the peer announced itself).
	Kind string `json:"kind"`
	// ConnectedAt is when the connection was authenticated.
	ConnectedAt time.Time `json:"connected_at"`
	// Score is the peer's reputation; misbehaviour lowers it.
	Score int `json:"score"`
}

// NodeEntry is a node of the routing table, an element of node.list's result.
type NodeEntry struct {
	// DID is the node's id.
	DID string `json:"did"`
	// Alias is the alias from the node's latest announcement.
	Alias string `json:"alias"`
	// Addresses are the host:port addresses from its latest announcement.
	Addresses []string `json:"addresses"`
	// Kind is KindNormal or KindRelay.
	Kind string `json:"kind"`
	// Version is the software version the node announced.
	Version string `json:"version"`
	// Features are the optional features the node announced.
	Features []string `json:"features"`
	// LastSeen is when this node last heard of it (announcement or traffic).
	LastSeen time.Time `json:"last_seen"`
	// AnnouncedAt is the timestamp of its latest signed announcement.
	AnnouncedAt time.Time `json:"announced_at"`
	// Connected reports whether it is a peer now.
	Connected bool `json:"connected"`
	// Self is true for this node's own entry.
	Self bool `json:"self"`
}

// ConnectParams are the params of node.connect.
type ConnectParams struct {
	// Addr is "did:key:…@host:port", or a did:key alone (required). The
	// connection succeeds only if the node there proves it holds that
	// did:key. Without an address the daemon dials the addresses the node
	// announced, else asks a connected relay to introduce the two nodes
	// (hole punching), else connects through the relay (spec/nat.md §4–5).
	Addr string `json:"addr"`
}

// StopResult is the result of node.stop.
type StopResult struct {
	// PID is the daemon's process id; the process exits once the shutdown
	// is complete, so a caller can wait for that.
	PID int `json:"pid"`
}

// getpid is os.Getpid; the spec's examples replace it to show a fixed pid.
var getpid = os.Getpid

func handleNodeInfo(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	info, err := svc.NodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	if info.Version == "" {
		info.Version = Version
	}
	return info, nil
}

func handleNodePeers(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	return svc.NodePeers(ctx)
}

func handleNodeList(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	return svc.NodeList(ctx)
}

func handleNodeConnect(ctx context.Context, svc Service, c *call) (any, error) {
	var p ConnectParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	if p.Addr == "" {
		return nil, Errorf(CodeInvalidParams, "%s: addr is required (did:key:…@host:port)", c.Method)
	}
	if _, err := identity.ParseAddr(p.Addr); err != nil {
		if _, idErr := identity.ParseNodeID(p.Addr); idErr != nil {
			return nil, Errorf(CodeInvalidParams, "%s: invalid addr: %w", c.Method, err)
		}
	}
	return svc.NodeConnect(ctx, p)
}

func handleNodeStop(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	// Stop only once the answer is out: the shutdown closes this
	// connection. A caller that hung up meanwhile asked all the same.
	c.after = func(context.Context) { _ = svc.NodeStop(context.WithoutCancel(ctx)) }
	return StopResult{PID: getpid()}, nil
}

// NodeInfo calls node.info.
func (c *Client) NodeInfo(ctx context.Context) (NodeInfo, error) {
	return callFor[NodeInfo](ctx, c, MethodNodeInfo, nil, nil)
}

// NodePeers calls node.peers.
func (c *Client) NodePeers(ctx context.Context) ([]Peer, error) {
	return callFor[[]Peer](ctx, c, MethodNodePeers, nil, nil)
}

// NodeList calls node.list.
func (c *Client) NodeList(ctx context.Context) ([]NodeEntry, error) {
	return callFor[[]NodeEntry](ctx, c, MethodNodeList, nil, nil)
}

// NodeConnect calls node.connect with addr, "did:key:…@host:port".
func (c *Client) NodeConnect(ctx context.Context, addr string) (Peer, error) {
	return callFor[Peer](ctx, c, MethodNodeConnect, ConnectParams{Addr: addr}, nil)
}

// NodeStop calls node.stop: the daemon answers, then shuts down. The
// result's PID is the process to wait for.
func (c *Client) NodeStop(ctx context.Context) (StopResult, error) {
	return callFor[StopResult](ctx, c, MethodNodeStop, nil, nil)
}
