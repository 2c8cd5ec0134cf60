package rpc

import (
	"context"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Methods for git's remote helper (cmd/git-remote-mega): where a
// repository's replica is, and publishing what a push wrote into it.
const (
	// MethodRepoLocate takes RepoLocateParams and returns LocateResult: the
	// bare replica of a repository and the namespace to serve from it.
	MethodRepoLocate = "repo.locate"
	// MethodRepoPublish takes RepoIDParams and returns PublishResult: the
	// node signs the refs of its own namespace of the replica (after a
	// git push into it) and announces them.
	MethodRepoPublish = "repo.publish"
)

// RepoLocateParams are the params of repo.locate.
type RepoLocateParams struct {
	// RepoID is the repository, "did:repo:z…" (the prefix is optional).
	RepoID string `json:"repo_id"`
	// Namespace, a did:key, names the node whose namespace to serve; empty
	// means the canonical one (the creator's).
	Namespace string `json:"namespace,omitempty"`
	// Own asks for this node's own namespace, to push into. With Own, a
	// Namespace other than this node's is refused (CodePermission).
	Own bool `json:"own,omitempty"`
}

// LocateResult is the result of repo.locate.
type LocateResult struct {
	RepoID string `json:"repo_id"`
	// GitDir is the absolute path of the bare replica.
	GitDir string `json:"git_dir"`
	// Namespace is the namespace's name in the replica, the owner's did:key
	// without "did:key:" (refs/namespaces/<namespace>/…): the value of
	// GIT_NAMESPACE.
	Namespace string `json:"namespace"`
	// Node is the namespace's owner, "did:key:z6Mk…".
	Node string `json:"node"`
	// DefaultBranch is the repository's default branch, from its identity
	// document; the namespace's HEAD points to it when the namespace has it.
	DefaultBranch string `json:"default_branch"`
	// Self is this node's did:key.
	Self string `json:"self"`
}

// PublishResult is the result of repo.publish.
type PublishResult struct {
	RepoID string `json:"repo_id"`
	// Updated is false when the namespace's refs equal the refs the node
	// had signed already: nothing was signed or announced.
	Updated bool `json:"updated"`
	// Seq is the sequence number of the node's signed refs (0 if it has
	// none).
	Seq uint64 `json:"seq"`
	// Refs are the signed refs, sorted by name.
	Refs []RefInfo `json:"refs"`
}

// RemoteService serves the remote helper's methods. It is optional: a
// Service that does not implement it answers them with CodeMethodNotFound.
type RemoteService interface {
	RepoLocate(ctx context.Context, p RepoLocateParams) (LocateResult, error)
	RepoPublish(ctx context.Context, p RepoIDParams) (PublishResult, error)
}

func remoteService(svc Service, c *call) (RemoteService, error) {
	rs, ok := svc.(RemoteService)
	if !ok {
		return nil, Errorf(CodeMethodNotFound, "%s is not served by this daemon", c.Method)
	}
	return rs, nil
}

func handleRepoLocate(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoLocateParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	if p.Namespace != "" {
		id, err := identity.ParseNodeID(p.Namespace)
		if err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: invalid namespace: %w", c.Method, err)
		}
		p.Namespace = id.String()
	}
	rs, err := remoteService(svc, c)
	if err != nil {
		return nil, err
	}
	return rs.RepoLocate(ctx, p)
}

func handleRepoPublish(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	rs, err := remoteService(svc, c)
	if err != nil {
		return nil, err
	}
	res, err := rs.RepoPublish(ctx, p)
	if err != nil {
		return nil, err
	}
	res.Refs = nonNil(res.Refs)
	return res, nil
}

// RepoLocate calls repo.locate.
func (c *Client) RepoLocate(ctx context.Context, p RepoLocateParams) (LocateResult, error) {
	var res LocateResult
	err := c.Call(ctx, MethodRepoLocate, p, &res, nil)
	return res, err
}

// RepoPublish calls repo.publish for the repository id.
func (c *Client) RepoPublish(ctx context.Context, id string) (PublishResult, error) {
	var res PublishResult
	if err := c.Call(ctx, MethodRepoPublish, RepoIDParams{RepoID: id}, &res, nil); err != nil {
		return res, err
	}
	res.Refs = nonNil(res.Refs)
	return res, nil
}
