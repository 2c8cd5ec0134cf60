package daemon

import (
	"context"
	"time"

	"github.com/megaengine/megaengine/daemon/collab"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// The collaboration side of the node: the collab service writes changes
// into the replica, has it re-sign this node's namespace and announces the
// new heads; fetches that bring changes refold and tell subscribers.

// openCollab makes the collab service (after the replica service).
func (n *Node) openCollab() error {
	var err error
	n.collab, err = collab.New(collab.Config{
		Key: n.key, Git: n.git, Replica: n.replica, Log: n.log.With("part", "collab"),
		Announce: func(a *wire.ActivityAnnouncement) error { _, err := n.gossip.Publish(a); return err },
		OnChanged: func(repo identity.RepoID, typ cob.ObjectType, object cob.ObjectID) {
			n.events.publish(rpc.Event{Type: rpc.EventCobChanged, Time: time.Now(), Repo: repo.String(), ObjectType: string(typ), Object: object.String()})
		},
	})
	return err
}

// cobsFetched is told by the replica that a fetch changed repo. The
// refold runs in the background: the fetch (and the sync waiting for it)
// does not wait for the notifications it makes.
func (n *Node) cobsFetched(repo identity.RepoID) {
	n.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n.collab.Refresh(ctx, repo)
	})
}
