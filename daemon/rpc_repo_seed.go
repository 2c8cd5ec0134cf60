package daemon

import (
	"context"
	"slices"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
	"github.com/megaengine/megaengine/rpc"
)

// RepoSeedRequest implements rpc.RepoService: it asks the connected peers,
// relays first, to seed the repository (spec/node.md §6).
func (n *Node) RepoSeedRequest(ctx context.Context, p rpc.SeedRequestParams) (rpc.SeedRequestResult, error) {
	repo, err := parseRepo(p.RepoID)
	if err != nil {
		return rpc.SeedRequestResult{}, err
	}
	res, err := n.replica.RequestSeeds(ctx, repo, p.Replicas, n.seedCandidates(), p.Wait())
	if err != nil {
		return rpc.SeedRequestResult{}, rpcError(err)
	}
	out := rpc.SeedRequestResult{RepoID: repo.String(), Replicas: p.Replicas, Accepted: res.Accepted(), InSync: res.InSync,
		Holders: n.holderStatuses(repo)}
	for _, a := range res.Answers {
		ans := rpc.SeedAnswer{Node: a.Node.String(), Accepted: a.Accepted(), Code: seedCode(a.Code), Reason: a.Reason}
		if a.Err != nil {
			ans.Code, ans.Reason = rpc.SeedNoAnswer, a.Err.Error()
		}
		out.Answers = append(out.Answers, ans)
	}
	return out, nil
}

// seedCandidates are the peers connected now that answer seed requests,
// relays first, then direct connections before relayed ones.
func (n *Node) seedCandidates() []identity.NodeID {
	peers := slices.DeleteFunc(n.tr.Peers(), func(p *transport.Peer) bool {
		na, _, ok := n.store.Node(p.ID)
		return !ok || !slices.Contains(na.Features, wire.FeatureSeedRequests)
	})
	rank := func(p *transport.Peer) int {
		r := 0
		if !n.isRelay(p.ID) {
			r += 2
		}
		if p.Path() != transport.PathDirect {
			r++
		}
		return r
	}
	slices.SortStableFunc(peers, func(a, b *transport.Peer) int { return rank(a) - rank(b) })
	out := make([]identity.NodeID, len(peers))
	for i, p := range peers {
		out[i] = p.ID
	}
	return out
}

// seedCode names a wire seed reply code for the RPC; a code this version
// does not know is a refusal.
func seedCode(code uint64) string {
	switch code {
	case wire.SeedAccepted:
		return rpc.SeedAccepted
	case wire.SeedNotAccepting:
		return rpc.SeedNotAccepting
	case wire.SeedOverBudget:
		return rpc.SeedOverBudget
	case wire.SeedBadRequest:
		return rpc.SeedBadRequest
	}
	return rpc.SeedRefused
}

// holderStatuses lists repo's holders and whether each is in sync.
func (n *Node) holderStatuses(repo identity.RepoID) []rpc.HolderStatus {
	var out []rpc.HolderStatus
	for _, h := range n.replica.HolderStates(repo) {
		out = append(out, rpc.HolderStatus{Node: h.Node.String(), InSync: h.InSync, LagSeconds: h.Lag.Seconds(), Known: h.Known})
	}
	return out
}
