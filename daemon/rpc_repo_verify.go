package daemon

import (
	"context"

	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// RepoVerify implements rpc.RepoService.
func (n *Node) RepoVerify(ctx context.Context, p rpc.RepoVerifyParams) (rpc.VerifyResult, error) {
	var only *identity.RepoID
	if p.RepoID != "" {
		repo, err := parseRepo(p.RepoID)
		if err != nil {
			return rpc.VerifyResult{}, err
		}
		only = &repo
	}
	reports, err := n.replica.Verify(ctx, only)
	if err != nil {
		return rpc.VerifyResult{}, rpcError(err)
	}
	res := rpc.VerifyResult{OK: true, Checked: len(reports)}
	for _, r := range reports {
		res.Repos = append(res.Repos, verifyOut(n.replica, r))
		if !r.OK() {
			res.OK = false
			res.Failed++
		}
	}
	return res, nil
}

func verifyOut(s *replica.Service, r replica.VerifyReport) rpc.RepoVerify {
	out := rpc.RepoVerify{RepoID: r.Repo.String(), OK: r.OK(), Namespaces: []rpc.NamespaceVerify{}}
	if doc, err := s.Doc(r.Repo); err == nil {
		out.Name = doc.Name()
	}
	if r.Fsck != nil {
		out.Fsck = r.Fsck.Error()
	}
	for _, ns := range r.Namespaces {
		v := rpc.NamespaceVerify{Node: ns.Node.String(), Seq: ns.Seq, OK: ns.Err == nil}
		if ns.Err != nil {
			v.Problem = ns.Err.Error()
		}
		out.Namespaces = append(out.Namespaces, v)
	}
	return out
}
