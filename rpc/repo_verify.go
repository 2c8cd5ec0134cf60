package rpc

import "context"

// MethodRepoVerify takes RepoVerifyParams and returns VerifyResult: git
// fsck of the replica of one repository (or of every one held) and every
// namespace's refs compared with its signed refs; a namespace that differs
// is reset to its signed refs (or a sync is scheduled) and reported.
const MethodRepoVerify = "repo.verify"

// RepoVerifyParams are the params of repo.verify.
type RepoVerifyParams struct {
	// RepoID is the repository to check; empty: every replica held.
	RepoID string `json:"repo_id,omitempty"`
}

// VerifyResult is the result of repo.verify.
type VerifyResult struct {
	// OK is true when every replica checked passed.
	OK bool `json:"ok"`
	// Checked and Failed count the replicas checked and those that failed.
	Checked int `json:"checked"`
	Failed  int `json:"failed"`
	// Repos has one entry per replica checked, sorted by id.
	Repos []RepoVerify `json:"repos"`
}

// RepoVerify is what repo.verify found in one replica.
type RepoVerify struct {
	RepoID string `json:"repo_id"`
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	// Fsck is git fsck's complaint, empty when the objects are sound.
	Fsck string `json:"fsck,omitempty"`
	// Namespaces are the namespaces checked, sorted by node.
	Namespaces []NamespaceVerify `json:"namespaces"`
}

// NamespaceVerify is one namespace compared with its signed refs.
type NamespaceVerify struct {
	Node string `json:"node"`
	// Seq is the seq of the signed refs held (0: none).
	Seq uint64 `json:"seq"`
	OK  bool   `json:"ok"`
	// Problem says what differed and what was done about it.
	Problem string `json:"problem,omitempty"`
}

// VerifyService serves repo.verify. It is optional: a Service that does
// not implement it answers with CodeMethodNotFound.
type VerifyService interface {
	RepoVerify(ctx context.Context, p RepoVerifyParams) (VerifyResult, error)
}

func handleRepoVerify(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoVerifyParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, false); err != nil {
		return nil, err
	}
	vs, ok := svc.(VerifyService)
	if !ok {
		return nil, Errorf(CodeMethodNotFound, "%s is not served by this daemon", c.Method)
	}
	res, err := vs.RepoVerify(ctx, p)
	if err != nil {
		return nil, err
	}
	res.Repos = nonNil(res.Repos)
	for i := range res.Repos {
		res.Repos[i].Namespaces = nonNil(res.Repos[i].Namespaces)
	}
	return res, nil
}

// RepoVerify calls repo.verify; id "" checks every replica.
func (c *Client) RepoVerify(ctx context.Context, id string) (VerifyResult, error) {
	var res VerifyResult
	if err := c.Call(ctx, MethodRepoVerify, RepoVerifyParams{RepoID: id}, &res, nil); err != nil {
		return res, err
	}
	res.Repos = nonNil(res.Repos)
	return res, nil
}
