package daemon

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// The routing side of the node: what gossip told us of other nodes, the
// events it makes, and this node's own announcement.

func (n *Node) loadKnown() error {
	return n.store.EachNode(func(a store.Announcement, _ *wire.NodeAnnouncement) error {
		n.known[a.Origin] = true
		return nil
	})
}

// onAnnouncement is called by gossip for every new announcement of another node.
func (n *Node) onAnnouncement(from identity.NodeID, env *wire.Envelope, body wire.Body) {
	if n.cfg.onAccepted != nil {
		defer n.cfg.onAccepted(env, body)
	}
	switch b := body.(type) {
	case *wire.NodeAnnouncement:
		n.mu.Lock()
		isNew := !n.known[env.Origin]
		n.known[env.Origin] = true
		n.mu.Unlock()
		n.dialer.Kick() // new node or new addresses: worth a look now
		n.relay.Kick()  // it may be a connected relay
		if isNew {
			if from == env.Origin {
				n.log.Info("discovered a node", "node", env.Origin)
			} else {
				n.log.Info("discovered a node", "node", env.Origin, "via", from)
			}
			n.events.publish(rpc.Event{Type: rpc.EventNodeDiscovered, Time: time.Now(), DID: env.Origin.String(), Alias: b.Alias, Addresses: b.Addresses})
		}
	case *wire.RepoAnnouncement:
		n.events.publish(rpc.Event{Type: rpc.EventRepoAnnounced, Time: time.Now(), DID: env.Origin.String(), Repo: b.Repo.String()})
		n.replica.HandleAnnouncement(env.Origin, b)
	case *wire.ActivityAnnouncement:
		n.replica.HandleActivity(env.Origin, b) // new collaboration heads: fetch now
	}
}

// follow subscribes gossip to what the node replicates: the repositories it
// chose, or — replicating every announced repository, or relaying for
// others — everything.
func (n *Node) follow(repos []identity.RepoID) {
	if n.cfg.Relay || n.cfg.Replicate == ReplicateAll {
		// It wants everything whatever it follows: say so once, with no
		// filter, so that peers are not asked for snapshots again and again.
		if !n.followsAll.Swap(true) {
			n.gossip.SetSubscriptions(nil, true)
		}
		return
	}
	n.gossip.SetSubscriptions(repos, false)
}

// replicaEvent turns what the replica service did into an RPC event.
func (n *Node) replicaEvent(ev replica.Event) {
	out := rpc.Event{Time: time.Now(), Repo: ev.Repo.String(), Bytes: ev.Bytes}
	if !ev.Node.IsZero() {
		out.DID, out.Alias = ev.Node.String(), n.store.Alias(ev.Node)
	}
	switch ev.Kind {
	case replica.SyncStarted:
		out.Type = rpc.EventRepoSyncStarted
	case replica.SyncFinished:
		out.Type = rpc.EventRepoSyncFinished
	case replica.SyncFailed:
		out.Type, out.Reason = rpc.EventRepoSyncFailed, ev.Err.Error()
	case replica.Published:
		out.Type = rpc.EventRepoPublished
	default:
		return
	}
	n.events.publish(out)
}

// discoverWait is how long a sync of an unknown repository waits for its
// holders: a node that follows only what it chose hears of a repository
// only once it subscribes to it; one that follows everything knows already.
func (n *Node) discoverWait() time.Duration {
	if n.cfg.Relay || n.cfg.Replicate == ReplicateAll {
		return 0
	}
	return 5 * time.Second
}

// nodeExpiryEvery is how often the routing table is swept.
const nodeExpiryEvery = time.Minute

// expireNodes forgets nodes not heard from for NodeExpiry, until ctx is done.
func (n *Node) expireNodes(ctx context.Context) error {
	t := time.NewTicker(nodeExpiryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		gone, err := n.store.Expire(time.Now().Add(-n.cfg.NodeExpiry))
		if err != nil {
			n.log.Warn("forgetting nodes not heard from failed; retrying in a minute", "err", err)
			continue
		}
		n.forgetNodes(gone)
		if len(gone) > 0 {
			n.log.Info("forgot nodes not heard from", "count", len(gone), "after", n.cfg.NodeExpiry)
		}
	}
}

// forgetNodes drops nodes the store forgot (expired, or evicted by the
// node table's bound) from what the node keeps of them.
func (n *Node) forgetNodes(ids []identity.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		delete(n.known, id)
		n.dialer.Forget(id)
	}
}

// dialCandidates lists up to max learned nodes worth dialling: not this
// node, not skipped by the dialer, not banned.
func (n *Node) dialCandidates(max int, skip func(identity.NodeID) bool) []identity.Addr {
	var out []identity.Addr
	_ = n.store.EachNode(func(a store.Announcement, na *wire.NodeAnnouncement) error {
		if len(out) >= max {
			return store.ErrStop
		}
		if a.Origin == n.ID() || len(na.Addresses) == 0 || n.gossip.Banned(a.Origin) != nil || skip(a.Origin) {
			return nil
		}
		out = append(out, identity.Addr{ID: a.Origin, HostPort: na.Addresses[0]})
		return nil
	})
	return out
}

// rank is how much the node relies on peer id, for the transport's
// inbound slots: bootstrap nodes most, then relays and nodes that served
// us a fetch; a peer's penalties count against it. Strangers rank 0.
func (n *Node) rank(id identity.NodeID) int {
	r := 0
	if slices.ContainsFunc(n.cfg.Bootstrap, func(a identity.Addr) bool { return a.ID == id }) {
		r += 100
	}
	if n.isRelay(id) {
		r += 50
	}
	if n.replica.ServedUs(id) {
		r += 30
	}
	return r - n.gossip.Score(id)
}

func (n *Node) onPeer(p *transport.Peer) {
	n.dialer.Forget(p.ID)
	n.relay.Kick() // it may be a relay to ask for a dial-back
	n.replica.Reached(p.ID)
	if err := n.store.Peered(p.ID, time.Now()); err != nil {
		n.log.Warn("recording when a peer was last seen failed", "peer", p.ID, "err", err)
	}
	n.log.Info("peer connected", "peer", p.ID, "remote", p.Remote.String(), "direction", p.Direction())
	n.events.publish(rpc.Event{Type: rpc.EventPeerConnected, Time: time.Now(), DID: p.ID.String(), Alias: n.store.Alias(p.ID), Addresses: []string{p.Remote.String()}})
	// The snapshot goes on its own stream; the handler must not wait for it.
	n.bg.Go(func() { n.gossip.PeerConnected(p.ID) })
	n.bg.Go(func() { n.replica.PeerConnected(p.ID) })
}

func (n *Node) onPeerGone(p *transport.Peer, err error) {
	n.gossip.PeerGone(p.ID)
	n.dialer.Kick()
	_ = n.store.Peered(p.ID, time.Now())
	reason := "closed"
	if err != nil {
		reason = err.Error()
	}
	n.log.Info("peer disconnected", "peer", p.ID, "reason", reason)
	n.events.publish(rpc.Event{Type: rpc.EventPeerDisconnected, Time: time.Now(), DID: p.ID.String(), Reason: reason})
}

// announceSelf publishes this node's NodeAnnouncement.
func (n *Node) announceSelf() error {
	kind := wire.KindNormal
	if n.cfg.Relay {
		kind = wire.KindRelay
	}
	addrs := n.announceAddrs()
	n.mu.Lock()
	n.reach.announced = addrs
	n.mu.Unlock()
	_, err := n.gossip.Publish(&wire.NodeAnnouncement{
		Alias:     n.cfg.Alias,
		Addresses: addrs,
		Kind:      kind,
		Version:   versionForWire(),
		Features:  []string{wire.FeatureSeedRequests},
	})
	return err
}

// versionForWire trims the build version to what a NodeAnnouncement allows.
func versionForWire() string {
	v := []byte(rpc.Version)
	out := v[:0]
	for _, c := range v {
		if c > ' ' && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out[:min(len(out), wire.MaxVersionLen)])
}

// MeshLinks is how many connected peers that hold it the node keeps for
// each repository it follows (spec/scale.md §2.4): with 20 % of nodes
// crashed, 2 left some followers cut off in the simulator, 4 none.
const MeshLinks = 4

// maxMeshRepos bounds the followed repositories one look of the dialer
// considers; the next look goes on from where it stopped.
const maxMeshRepos = 256

// meshCandidates are holders of followed repositories that have fewer
// than MeshLinks connected holders, to dial (transport.DialerConfig.Mesh).
// A relay keeps none: it follows everything and is dialled by others.
func (n *Node) meshCandidates(max int, skip func(identity.NodeID) bool) []identity.Addr {
	if n.cfg.Relay {
		return nil
	}
	followed := n.replica.Followed()
	slices.SortFunc(followed, func(a, b identity.RepoID) int { return bytes.Compare(a[:], b[:]) })
	var out []identity.Addr
	picked := func(id identity.NodeID) bool {
		return slices.ContainsFunc(out, func(a identity.Addr) bool { return a.ID == id })
	}
	start := int(n.meshNext.Load())
	for i := range min(len(followed), maxMeshRepos) {
		if len(out) >= max {
			break
		}
		repo := followed[(start+i)%len(followed)]
		n.meshNext.Store(int64((start + i + 1) % len(followed)))
		holders := n.replica.Holders(repo)
		linked := 0
		for _, h := range holders {
			if n.tr.Peer(h) != nil || picked(h) {
				linked++
			}
		}
		for _, h := range holders {
			if linked >= MeshLinks || len(out) >= max {
				break
			}
			if h == n.ID() || picked(h) || skip(h) || n.gossip.Banned(h) != nil {
				continue
			}
			if na, _, ok := n.store.Node(h); ok && len(na.Addresses) > 0 {
				out = append(out, identity.Addr{ID: h, HostPort: na.Addresses[0]})
				linked++
			}
		}
	}
	return out
}
