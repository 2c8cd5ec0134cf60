package rpc

import (
	"context"
	"time"
)

// Repository methods.
const (
	// MethodRepoAdd takes RepoAddParams and returns the new RepoInfo: the
	// working repository at Path is shared under a new did:repo and watched.
	MethodRepoAdd = "repo.add"
	// MethodRepoList takes no params and returns []RepoInfo, every
	// repository the node knows of (an empty array, never null).
	MethodRepoList = "repo.list"
	// MethodRepoShow takes RepoIDParams and returns RepoDetail.
	MethodRepoShow = "repo.show"
	// MethodRepoSync takes RepoIDParams and returns SyncResult after
	// fetching the newest signed refs from the network; progress
	// notifications come before the answer.
	MethodRepoSync = "repo.sync"
	// MethodRepoClone takes RepoCloneParams and returns CloneResult: a
	// working copy made from the local replica (replicated first if
	// needed), with remote origin = mega://<repo-id>.
	MethodRepoClone = "repo.clone"
	// MethodRepoPull takes RepoPullParams and returns PullResult: the
	// working copy's current branch fast-forwarded to the replica's.
	MethodRepoPull = "repo.pull"
	// MethodRepoSeed takes RepoIDParams and returns RepoInfo: the node
	// replicates the repository from now on.
	MethodRepoSeed = "repo.seed"
	// MethodRepoUnseed takes RepoIDParams and returns RepoInfo: the node
	// stops replicating the repository (the replica is kept until removed).
	MethodRepoUnseed = "repo.unseed"
)

// Replica states (RepoInfo.Replica). Append-only.
const (
	ReplicaUpToDate = "up-to-date"     // the replica holds the newest signed refs the node has heard of
	ReplicaBehind   = "behind"         // newer refs were announced ("has updates")
	ReplicaSyncing  = "syncing"        // a fetch is running
	ReplicaMissing  = "not-replicated" // known from gossip only
)

// Working-copy states (CloneStatus.Status). Append-only.
const (
	CloneUpToDate = "up-to-date" // its branch equals the replica's
	CloneBehind   = "behind"     // the replica has commits it lacks: repo pull brings them
	CloneAhead    = "ahead"      // it has local commits the replica lacks
	CloneDiverged = "diverged"   // both
	CloneMissing  = "missing"    // the directory is gone or not that repository
)

// RepoAddParams are the params of repo.add. Path is absolute (mecli
// resolves relative paths: the daemon's working directory is not the
// caller's).
type RepoAddParams struct {
	Path        string `json:"path"`
	Name        string `json:"name,omitempty"`        // default: the directory's name
	Description string `json:"description,omitempty"` // default: empty
}

// RepoIDParams name one repository, "did:repo:z…" (the prefix is optional).
type RepoIDParams struct {
	RepoID string `json:"repo_id"`
}

// RepoCloneParams are the params of repo.clone.
type RepoCloneParams struct {
	RepoID string `json:"repo_id"`
	// Path is the absolute path of the new working copy; it must not
	// exist, or be an empty directory.
	Path string `json:"path"`
	// Namespace, a did:key, clones that node's refs instead of the
	// canonical (delegates') ones.
	Namespace string `json:"namespace,omitempty"`
}

// RepoPullParams are the params of repo.pull.
type RepoPullParams struct {
	// RepoID may be empty: the repository is then read from the working
	// copy's origin URL.
	RepoID string `json:"repo_id,omitempty"`
	// Path is the absolute path of a working copy made by repo.clone.
	Path string `json:"path"`
}

// RepoInfo describes one repository as this node sees it.
type RepoInfo struct {
	RepoID        string   `json:"repo_id"`
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Creator       string   `json:"creator"`
	DefaultBranch string   `json:"default_branch"`
	Delegates     []string `json:"delegates"`
	// Holders are the nodes that announced they hold the repository.
	Holders []string `json:"holders"`
	// Local is true for repositories added on this node; Path is then the
	// working repository the node watches and publishes from.
	Local bool   `json:"local"`
	Path  string `json:"path,omitempty"`
	// Seeded is true when this node replicates the repository.
	Seeded bool `json:"seeded"`
	// Replica is one of the Replica* states.
	Replica string `json:"replica"`
	// Head is the commit of the canonical default branch in the replica.
	Head string `json:"head,omitempty"`
	// Clones are the working copies repo.clone made, with their state.
	Clones    []CloneStatus `json:"clones"`
	LastSync  *time.Time    `json:"last_sync,omitempty"`
	LastError string        `json:"last_error,omitempty"`
}

// CloneStatus is a working copy and how it compares with the replica.
type CloneStatus struct {
	Path   string `json:"path"`
	Branch string `json:"branch"`
	Status string `json:"status"`
}

// RepoDetail is RepoInfo with every namespace's signed refs.
type RepoDetail struct {
	RepoInfo
	Namespaces []NamespaceRefs `json:"namespaces"`
}

// NamespaceRefs are one node's signed refs of a repository.
type NamespaceRefs struct {
	Node      string    `json:"node"`
	Canonical bool      `json:"canonical"` // the node is a delegate
	Seq       uint64    `json:"seq"`
	Refs      []RefInfo `json:"refs"`
}

// RefInfo is one ref.
type RefInfo struct {
	Name string `json:"name"`
	OID  string `json:"oid"`
}

// SyncResult is the result of repo.sync.
type SyncResult struct {
	RepoID string `json:"repo_id"`
	// Updated reports whether any namespace changed.
	Updated bool `json:"updated"`
	// From is the node the refs came from ("" when already up to date).
	From string `json:"from,omitempty"`
	// Namespaces is how many namespaces were updated.
	Namespaces int `json:"namespaces"`
	// Bytes is the size of the pack received.
	Bytes int64 `json:"bytes"`
}

// CloneResult is the result of repo.clone.
type CloneResult struct {
	RepoID string `json:"repo_id"`
	Path   string `json:"path"`
	Branch string `json:"branch"`
	Head   string `json:"head"`
}

// PullResult is the result of repo.pull.
type PullResult struct {
	RepoID  string `json:"repo_id"`
	Path    string `json:"path"`
	Branch  string `json:"branch"`
	Updated bool   `json:"updated"`
	Old     string `json:"old"`
	Head    string `json:"head"`
}

// ProgressFunc reports progress of a long operation; the server turns each
// call into a "progress" notification. total is 0 when unknown.
type ProgressFunc func(done, total int64, message string)

// RepoService is the repository part of Service.
type RepoService interface {
	RepoAdd(ctx context.Context, p RepoAddParams) (RepoInfo, error)
	RepoList(ctx context.Context) ([]RepoInfo, error)
	RepoShow(ctx context.Context, p RepoIDParams) (RepoDetail, error)
	RepoSync(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error)
	RepoClone(ctx context.Context, p RepoCloneParams, progress ProgressFunc) (CloneResult, error)
	RepoPull(ctx context.Context, p RepoPullParams, progress ProgressFunc) (PullResult, error)
	// RepoSeed starts (seed true) or stops replicating a repository.
	RepoSeed(ctx context.Context, p RepoIDParams, seed bool) (RepoInfo, error)
}
