package daemon

import (
	"context"

	"github.com/megaengine/megaengine/rpc"
)

// NodeStop serves node.stop: it ends Serve as SIGTERM would (the rpc
// server calls it once its answer is sent).
func (n *Node) NodeStop(ctx context.Context) error {
	if n.stop == nil {
		return rpc.Errorf(rpc.CodeShuttingDown, "the node is not serving")
	}
	n.log.Info("stopping: asked over the control socket")
	n.stop()
	return nil
}
