package rpc

import (
	"context"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Changing a repository's identity document (spec/repo.md §2.2): each
// method signs the next version with this node's key; it is applied when
// this signature completes the threshold of the current delegates,
// otherwise it is kept as a proposal that other delegates sign by making
// the same change on their nodes.
const (
	// MethodRepoEdit takes RepoEditParams and returns EditResult.
	MethodRepoEdit = "repo.edit"
	// MethodRepoDelegateAdd takes RepoDelegateParams and returns EditResult.
	MethodRepoDelegateAdd = "repo.delegate.add"
	// MethodRepoDelegateRemove takes RepoDelegateParams and returns EditResult.
	MethodRepoDelegateRemove = "repo.delegate.remove"
)

// RepoEditParams change the name, description or threshold; absent
// fields stay as they are.
type RepoEditParams struct {
	RepoID      string  `json:"repo_id"`
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Threshold   int     `json:"threshold,omitempty"` // 0: unchanged
	// Set by the daemon for repo.delegate.*: the delegate to add or remove.
	AddDelegate    string `json:"-"`
	RemoveDelegate string `json:"-"`
}

// RepoDelegateParams name a repository and a delegate (did:key).
type RepoDelegateParams struct {
	RepoID   string `json:"repo_id"`
	Delegate string `json:"delegate"`
}

// EditResult is the version signed: applied, or a proposal still short of
// Missing signatures.
type EditResult struct {
	RepoID   string    `json:"repo_id"`
	Applied  bool      `json:"applied"`
	Missing  int       `json:"missing"`
	Identity RepoIdent `json:"identity"`
}

// RepoIdent is one version of a repository's identity document.
type RepoIdent struct {
	Version     uint64   `json:"version"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Delegates   []string `json:"delegates"`
	Threshold   int      `json:"threshold"`
	Signers     []string `json:"signers"`
}

func handleRepoEdit(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoEditParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	if p.Name != nil {
		if err := wire.CheckRepoName(*p.Name); err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: %w", c.Method, err)
		}
	}
	if p.Description != nil {
		if err := wire.CheckDescription(*p.Description); err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: %w", c.Method, err)
		}
	}
	if p.Threshold < 0 || p.Threshold > wire.MaxDelegates {
		return nil, Errorf(CodeInvalidParams, "%s: threshold %d: want 1 to %d", c.Method, p.Threshold, wire.MaxDelegates)
	}
	if p.Name == nil && p.Description == nil && p.Threshold == 0 {
		return nil, Errorf(CodeInvalidParams, "%s: nothing to change: give name, description or threshold", c.Method)
	}
	return svc.RepoEdit(ctx, p)
}

func handleRepoDelegate(add bool) handlerFunc {
	return func(ctx context.Context, svc Service, c *call) (any, error) {
		var p RepoDelegateParams
		if err := decodeParams(c, &p); err != nil {
			return nil, err
		}
		repo, err := checkRepoID(c, p.RepoID, true)
		if err != nil {
			return nil, err
		}
		id, err := identity.ParseNodeID(p.Delegate)
		if err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: invalid delegate (want did:key:z…): %w", c.Method, err)
		}
		e := RepoEditParams{RepoID: repo}
		if add {
			e.AddDelegate = id.String()
		} else {
			e.RemoveDelegate = id.String()
		}
		return svc.RepoEdit(ctx, e)
	}
}

// RepoEdit calls repo.edit.
func (c *Client) RepoEdit(ctx context.Context, p RepoEditParams) (EditResult, error) {
	return callFor[EditResult](ctx, c, MethodRepoEdit, p, nil)
}

// RepoDelegate calls repo.delegate.add (add) or repo.delegate.remove.
func (c *Client) RepoDelegate(ctx context.Context, p RepoDelegateParams, add bool) (EditResult, error) {
	m := MethodRepoDelegateRemove
	if add {
		m = MethodRepoDelegateAdd
	}
	return callFor[EditResult](ctx, c, m, p, nil)
}
