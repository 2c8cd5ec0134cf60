package rpc

import (
	"encoding/json"
	"slices"
	"time"
)

// Version is the daemon's version, reported by node.info. Release builds set
// it with -ldflags "-X github.com/megaengine/megaengine/rpc.Version=v1.2.3".
var Version = "dev"

// Method names. A released name keeps its meaning and its params stay
// backwards compatible (new params are optional); a method that must change
// incompatibly gets a new name. Each name is documented in spec/rpc.md under
// a heading of its own (a test checks it).
const (
	// MethodNodeInfo takes no params and returns NodeInfo: who this node is,
	// where it listens, its version and counters.
	MethodNodeInfo = "node.info"

	// MethodNodePeers takes no params and returns []Peer, the nodes this one
	// is connected to now (an empty array, never null).
	MethodNodePeers = "node.peers"

	// MethodNodeList takes no params and returns []NodeEntry, every node in
	// the routing table, this one included (an empty array, never null).
	MethodNodeList = "node.list"

	// MethodNodeConnect takes ConnectParams and returns the Peer once the
	// connection is authenticated.
	MethodNodeConnect = "node.connect"

	// MethodEventsSubscribe takes SubscribeParams and returns
	// SubscribeResult; after that answer the daemon sends an "event"
	// notification (params Event) for every matching event, in order, until
	// the connection closes.
	MethodEventsSubscribe = "events.subscribe"
)

// Notification names: messages the daemon sends without an id.
const (
	// NotifyEvent carries one Event to a connection that called
	// events.subscribe.
	NotifyEvent = "event"

	// NotifyProgress reports the progress of a long call (clone, sync, …)
	// before its answer; params Progress, whose token is the call's id.
	NotifyProgress = "progress"
)

// Event types, the Type of an Event. Append-only.
const (
	// EventPeerConnected: a connection to DID was authenticated; Alias and
	// Addresses describe the peer when known.
	EventPeerConnected = "peer.connected"
	// EventPeerDisconnected: the connection to DID closed; Reason says why.
	EventPeerDisconnected = "peer.disconnected"
	// EventNodeDiscovered: a node that was not in the routing table
	// announced itself (DID, Alias, Addresses).
	EventNodeDiscovered = "node.discovered"
	// EventRepoAnnounced: DID announced repository Repo (new or updated).
	EventRepoAnnounced = "repo.announced"
)

var eventTypes = []string{EventPeerConnected, EventPeerDisconnected, EventNodeDiscovered, EventRepoAnnounced}

// EventTypes returns every event type the daemon may send, in the order they
// were added.
func EventTypes() []string { return slices.Clone(eventTypes) }

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

// MethodInfo describes one method of the table.
type MethodInfo struct {
	Name string
	// Mutating is true for methods that change the node's state (connect,
	// add a repository, …) and false for those that only read it.
	Mutating bool
	// Summary is one line for listings and help texts.
	Summary string
}

// method is one entry of the dispatch table: its description and handler.
type method struct {
	MethodInfo
	handle handlerFunc
}

// methodTable is the one method table: the server dispatches from it, the
// docs and tests read it. Adding a method is one entry here (plus its
// handler in handlers.go and its section in spec/rpc.md). Order: as listed in
// the spec.
var methodTable = []method{
	{MethodInfo{MethodNodeInfo, false, "who this node is: id, alias, addresses, version, counters"}, handleNodeInfo},
	{MethodInfo{MethodNodePeers, false, "the nodes connected now"}, handleNodePeers},
	{MethodInfo{MethodNodeList, false, "every node in the routing table"}, handleNodeList},
	{MethodInfo{MethodNodeConnect, true, "connect to a node at did:key:…@host:port"}, handleNodeConnect},
	{MethodInfo{MethodEventsSubscribe, false, "receive events as notifications on this connection"}, handleEventsSubscribe},
	{MethodInfo{MethodRepoAdd, true, "share a working git repository under a new did:repo and keep publishing it"}, handleRepoAdd},
	{MethodInfo{MethodRepoList, false, "every repository the node knows, with replica and working-copy state"}, handleRepoList},
	{MethodInfo{MethodRepoShow, false, "one repository: identity, holders, every namespace's signed refs"}, handleRepoShow},
	{MethodInfo{MethodRepoSync, true, "fetch a repository's newest signed refs from the network now"}, handleRepoSync},
	{MethodInfo{MethodRepoClone, true, "make a working copy from the local replica (origin mega://<repo-id>)"}, handleRepoClone},
	{MethodInfo{MethodRepoPull, true, "fast-forward a working copy to the replica's branch"}, handleRepoPull},
	{MethodInfo{MethodRepoSeed, true, "replicate a repository from now on"}, handleRepoSeed},
	{MethodInfo{MethodRepoUnseed, true, "stop replicating a repository (the replica is kept)"}, handleRepoUnseed},
	{MethodInfo{MethodRepoLocate, false, "where the bare replica is and which namespace to serve (for git-remote-mega)"}, handleRepoLocate},
	{MethodInfo{MethodRepoPublish, true, "sign and announce this node's namespace after a git push into it"}, handleRepoPublish},
	{MethodInfo{MethodRepoVerify, true, "check replicas: git fsck, and every namespace against its signed refs (repairing)"}, handleRepoVerify},
}

// Methods returns the method table, in the order of the spec.
func Methods() []MethodInfo {
	out := make([]MethodInfo, len(methodTable))
	for i, m := range methodTable {
		out[i] = m.MethodInfo
	}
	return out
}

// LookupMethod returns the description of the named method.
func LookupMethod(name string) (MethodInfo, bool) {
	for _, m := range methodTable {
		if m.Name == name {
			return m.MethodInfo, true
		}
	}
	return MethodInfo{}, false
}

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
	// Addr is "did:key:…@host:port" (required). The connection succeeds
	// only if the node there proves it holds that did:key.
	Addr string `json:"addr"`
}

// SubscribeParams are the params of events.subscribe.
type SubscribeParams struct {
	// Types selects event types (EventTypes); empty means all of them.
	Types []string `json:"types,omitempty"`
}

// SubscribeResult is the result of events.subscribe.
type SubscribeResult struct {
	// Subscribed is always true in a successful answer.
	Subscribed bool `json:"subscribed"`
}

// Event is the params of an "event" notification.
type Event struct {
	// Type is one of EventTypes.
	Type string `json:"type"`
	// Time is when the daemon observed the event.
	Time time.Time `json:"time"`
	// DID is the node the event is about.
	DID string `json:"did,omitempty"`
	// Repo is the repository id (did:repo:…) for repo.* events.
	Repo string `json:"repo,omitempty"`
	// Alias is the node's alias, when known.
	Alias string `json:"alias,omitempty"`
	// Addresses are the node's addresses, when relevant.
	Addresses []string `json:"addresses,omitempty"`
	// Reason explains a disconnection or a failure.
	Reason string `json:"reason,omitempty"`
}

// Progress is the params of a "progress" notification, sent by long calls
// before their answer.
type Progress struct {
	// Token is the id of the call this progress belongs to, the same JSON
	// value (number or string) the caller sent.
	Token json.RawMessage `json:"token"`
	// Done counts the units of work finished (bytes, objects, …).
	Done int64 `json:"done"`
	// Total is the number of units expected, or 0 when unknown.
	Total int64 `json:"total"`
	// Message says what is being done, for humans.
	Message string `json:"message,omitempty"`
}
