package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/megaengine/megaengine/daemon/relay"
	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
)

// connectTry bounds one direct dial of node.connect by id.
const connectTry = 3 * time.Second

// connectID connects to id given without an address (node.connect
// did:key:…): at the addresses it announced or shared, else through each
// connected relay — first a hole punch (introduction), then a relayed
// stream (spec/nat.md §4–5).
func (n *Node) connectID(ctx context.Context, id identity.NodeID) (*transport.Peer, error) {
	if id == n.ID() {
		return nil, transport.ErrSelf
	}
	if p := n.tr.Peer(id); p != nil {
		return p, nil
	}
	var errs []error
	for _, a := range n.dialAddrs(id) {
		dctx, cancel := context.WithTimeout(ctx, connectTry)
		p, err := n.tr.Dial(dctx, identity.Addr{ID: id, HostPort: a})
		cancel()
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	for _, r := range n.tr.Peers() {
		if !n.isRelay(r.ID) || r.Path() != transport.PathDirect {
			continue
		}
		p, err := n.relay.Punch(ctx, r, id)
		if err == nil {
			n.log.Info("connected through a punched hole", "peer", id, "relay", r.ID, "remote", p.Remote.String())
			return p, nil
		}
		errs = append(errs, fmt.Errorf("hole punching through %s: %w", r.ID.Short(), err))
		if p, err = n.relay.Relayed(ctx, r, id); err == nil {
			n.log.Info("connected through a relay", "peer", id, "relay", r.ID)
			return p, nil
		}
		errs = append(errs, fmt.Errorf("relayed through %s: %w", r.ID.Short(), err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: no known address and %w", id.Short(), relay.ErrNoRelay)
	}
	return nil, fmt.Errorf("connecting to %s: %w", id.Short(), errors.Join(errs...))
}
