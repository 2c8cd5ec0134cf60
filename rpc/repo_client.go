package rpc

import (
	"context"
	"encoding/json"
)

// RepoAdd calls repo.add. p.Path must be absolute.
func (c *Client) RepoAdd(ctx context.Context, p RepoAddParams) (RepoInfo, error) {
	var info RepoInfo
	err := c.Call(ctx, MethodRepoAdd, p, &info, nil)
	return info, err
}

// RepoList calls repo.list.
func (c *Client) RepoList(ctx context.Context) ([]RepoInfo, error) {
	var repos []RepoInfo
	if err := c.Call(ctx, MethodRepoList, nil, &repos, nil); err != nil {
		return nil, err
	}
	return nonNil(repos), nil
}

// RepoShow calls repo.show for the repository id ("did:repo:z…").
func (c *Client) RepoShow(ctx context.Context, id string) (RepoDetail, error) {
	var d RepoDetail
	err := c.Call(ctx, MethodRepoShow, RepoIDParams{RepoID: id}, &d, nil)
	return d, err
}

// RepoSync calls repo.sync. onProgress, if not nil, receives the progress
// reports that come before the answer, in order, on the connection's read
// goroutine: it must not block.
func (c *Client) RepoSync(ctx context.Context, id string, onProgress func(Progress)) (SyncResult, error) {
	var res SyncResult
	err := c.Call(ctx, MethodRepoSync, RepoIDParams{RepoID: id}, &res, progressRoute(onProgress))
	return res, err
}

// RepoClone calls repo.clone; onProgress is as for RepoSync. p.Path must be
// absolute.
func (c *Client) RepoClone(ctx context.Context, p RepoCloneParams, onProgress func(Progress)) (CloneResult, error) {
	var res CloneResult
	err := c.Call(ctx, MethodRepoClone, p, &res, progressRoute(onProgress))
	return res, err
}

// RepoPull calls repo.pull; onProgress is as for RepoSync. p.Path must be
// absolute.
func (c *Client) RepoPull(ctx context.Context, p RepoPullParams, onProgress func(Progress)) (PullResult, error) {
	var res PullResult
	err := c.Call(ctx, MethodRepoPull, p, &res, progressRoute(onProgress))
	return res, err
}

// RepoSeed calls repo.seed (seed true) or repo.unseed.
func (c *Client) RepoSeed(ctx context.Context, id string, seed bool) (RepoInfo, error) {
	method := MethodRepoSeed
	if !seed {
		method = MethodRepoUnseed
	}
	var info RepoInfo
	err := c.Call(ctx, method, RepoIDParams{RepoID: id}, &info, nil)
	return info, err
}

// progressRoute adapts a Progress callback to Call's onNotify.
func progressRoute(fn func(Progress)) func(string, json.RawMessage) {
	if fn == nil {
		return nil
	}
	return func(method string, params json.RawMessage) {
		if method != NotifyProgress {
			return
		}
		var p Progress
		if json.Unmarshal(params, &p) == nil {
			fn(p)
		}
	}
}
