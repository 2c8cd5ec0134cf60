package rpc

import (
	"context"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Replica states (RepoInfo.Replica). Append-only.
const (
	ReplicaUpToDate = "up-to-date"     // the replica holds the newest signed refs the node has heard of
	ReplicaBehind   = "behind"         // newer refs were announced ("has updates")
	ReplicaSyncing  = "syncing"        // a fetch is running
	ReplicaMissing  = "not-replicated" // known from gossip only
	// ReplicaHeardOf: announced, but no node that announced it was ever
	// reachable from here: it may not exist (anyone can sign an
	// announcement); forgotten after an hour.
	ReplicaHeardOf = "heard-of"
	// ReplicaWorkError: the working repository shared from this node
	// cannot be read (removed, moved, unreadable); last_error says why.
	ReplicaWorkError = "work-unreadable"
)

// Working-copy states (CloneStatus.Status). Append-only.
const (
	CloneUpToDate = "up-to-date" // its branch equals the replica's
	CloneBehind   = "behind"     // the replica has commits it lacks: repo pull brings them
	CloneAhead    = "ahead"      // it has local commits the replica lacks
	CloneDiverged = "diverged"   // both
	CloneMissing  = "missing"    // the directory is gone or not that repository
	// CloneError: the working copy cannot be read (CloneStatus.Reason says
	// why).
	CloneError = "error"
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
	// WorkTree, an absolute path, is the working copy that is about to
	// fetch (git clone, fetch or pull of a mega:// URL): the node records it
	// as a clone following this namespace and keeps seeding the repository,
	// exactly as repo.clone does. Empty for a bare repository or a push.
	WorkTree string `json:"work_tree,omitempty"`
	// ObjectsDir, an absolute path, is the object directory of a
	// repository being cloned (git clone mega://): the node hard-links the
	// replica's object files into it, as git clone --local does, and
	// answers with the namespace's refs (LocateResult.Refs), so nothing is
	// packed again. Not with Own.
	ObjectsDir string `json:"objects_dir,omitempty"`
	// Hold keeps the replica's pack files in place (no background repack
	// removes one) until the client closes its connection: for a
	// git upload-pack reading the replica. Not with Own.
	Hold bool `json:"hold,omitempty"`
}

// RepoInfo describes one repository as this node sees it.
type RepoInfo struct {
	RepoID        string   `json:"repo_id"`
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Creator       string   `json:"creator"`
	DefaultBranch string   `json:"default_branch"`
	Delegates     []string `json:"delegates"`
	// Threshold is how many delegates sign a new identity version and
	// agree on the canonical branch; DocVersion is the identity
	// document's version (1 for the first).
	// Both are absent while the node holds no document of it.
	Threshold  int    `json:"threshold,omitempty"`
	DocVersion uint64 `json:"doc_version,omitempty"`
	// Updated (repo.add only): the name or description given signed a new
	// identity version.
	Updated bool `json:"updated,omitempty"`
	// Holders are the nodes that announced they hold the repository.
	Holders []string `json:"holders"`
	// HoldersInSync counts the holders that hold the newest signed refs of
	// the creator this node heard of.
	HoldersInSync int `json:"holders_in_sync"`
	// Local is true for repositories added on this node; Path is then the
	// working repository the node watches and publishes from.
	Local bool   `json:"local"`
	Path  string `json:"path,omitempty"`
	// Seeded is true when this node replicates the repository.
	Seeded bool `json:"seeded"`
	// SeedRequester is the node whose seed request (repo.seed_request)
	// made this node seed the repository, if that is why it does.
	SeedRequester string `json:"seed_requester,omitempty"`
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
	// Reason says why, for status "error".
	Reason string `json:"reason,omitempty"`
}

// RepoDetail is RepoInfo with every namespace's signed refs.
type RepoDetail struct {
	RepoInfo
	Namespaces []NamespaceRefs `json:"namespaces"`
	// HolderStates says, per holder, whether it is in sync with the
	// creator's newest signed refs, and how far behind it is.
	HolderStates []HolderStatus `json:"holder_states"`
	// Proposal is a next identity version still short of signatures.
	Proposal *RepoProposal `json:"proposal,omitempty"`
}

// RepoProposal is a proposed identity version and the signatures it lacks.
type RepoProposal struct {
	RepoIdent
	Missing int `json:"missing"`
}

// HolderStatus is one holder of a repository and how current its copy is.
type HolderStatus struct {
	Node string `json:"node"`
	// InSync: it holds the newest signed refs of the creator heard of.
	InSync bool `json:"in_sync"`
	// LagSeconds is how much older its copy of the creator's refs is
	// (signed refs seqs are millisecond timestamps); 0 when in sync.
	LagSeconds float64 `json:"lag_seconds"`
	// Known is false when the holder did not say which refs it holds.
	Known bool `json:"known"`
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
	// With ObjectsDir: the namespace's refs, the branch its HEAD names
	// ("" if none), and Keep, a .keep file next to a linked pack that
	// holds every ref's object ("" if none does), which git may be told
	// of (the remote helper's "lock" line) to skip its connectivity walk.
	Refs []RefInfo `json:"refs,omitempty"`
	Head string    `json:"head,omitempty"`
	Keep string    `json:"keep,omitempty"`
	// Release, set by a Service for Hold, is called once the client's
	// connection closes. Not sent.
	Release func() `json:"-"`
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

// RepoService is the repository part of Service: the repo.* methods. The
// ProgressFunc given to the long ones is never nil (see Service).
type RepoService interface {
	RepoAdd(ctx context.Context, p RepoAddParams) (RepoInfo, error)
	RepoList(ctx context.Context) ([]RepoInfo, error)
	RepoShow(ctx context.Context, p RepoIDParams) (RepoDetail, error)
	RepoSync(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error)
	RepoClone(ctx context.Context, p RepoCloneParams, progress ProgressFunc) (CloneResult, error)
	RepoPull(ctx context.Context, p RepoPullParams, progress ProgressFunc) (PullResult, error)
	// RepoSeed starts (seed true) or stops replicating a repository.
	RepoSeed(ctx context.Context, p RepoIDParams, seed bool) (RepoInfo, error)
	// RepoSeedRequest asks peers to seed a repository until enough
	// holders are in sync.
	RepoSeedRequest(ctx context.Context, p SeedRequestParams) (SeedRequestResult, error)
	// RepoLocate says where the bare replica is and which namespace of it
	// to serve, for git-remote-mega. With p.Own it prepares the replica for
	// a push into this node's namespace, and with p.WorkTree it records a
	// clone: it changes the node.
	RepoLocate(ctx context.Context, p RepoLocateParams) (LocateResult, error)
	// RepoPublish signs and announces this node's namespace of the replica
	// after a push into it.
	RepoPublish(ctx context.Context, p RepoIDParams) (PublishResult, error)
	// RepoVerify checks replicas: git fsck, and every namespace against its
	// signed refs, repairing what differs.
	RepoVerify(ctx context.Context, p RepoVerifyParams) (VerifyResult, error)
	// RepoRemove makes the node let go of a repository.
	RepoRemove(ctx context.Context, p RepoRemoveParams) (RemoveResult, error)
	// RepoEdit signs the next version of a repository's identity
	// document (repo.edit and repo.delegate.*).
	RepoEdit(ctx context.Context, p RepoEditParams) (EditResult, error)
}

// The repo.* handlers check every param before the Service sees it: ids are
// parsed and passed on in canonical form ("did:repo:z…", the W3C did:key),
// paths are absolute and clean, names and descriptions fit the limits of the
// repository identity document (protocol/wire). A Service may rely on it.

func handleRepoAdd(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoAddParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	if p.Name != "" { // empty: the directory's name
		if err := wire.CheckRepoName(p.Name); err != nil {
			return nil, Errorf(CodeInvalidParams, "%s: %w", c.Method, err)
		}
	}
	if err := wire.CheckDescription(p.Description); err != nil {
		return nil, Errorf(CodeInvalidParams, "%s: %w", c.Method, err)
	}
	return svc.RepoAdd(ctx, p)
}

func handleRepoList(ctx context.Context, svc Service, c *call) (any, error) {
	if err := noParams(c); err != nil {
		return nil, err
	}
	return svc.RepoList(ctx)
}

func handleRepoShow(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	return svc.RepoShow(ctx, p)
}

func handleRepoSync(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoSync(ctx, p, pr.report)
	pr.finish() // the last update goes out before the answer
	return res, err
}

func handleRepoClone(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoCloneParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	if p.Namespace, err = checkNamespace(c, p.Namespace); err != nil {
		return nil, err
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoClone(ctx, p, pr.report)
	pr.finish()
	return res, err
}

func handleRepoPull(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoPullParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, false); err != nil {
		return nil, err
	}
	if err := checkPath(c, "path", p.Path); err != nil {
		return nil, err
	}
	pr := newProgressReporter(c)
	defer pr.finish()
	res, err := svc.RepoPull(ctx, p, pr.report)
	pr.finish()
	return res, err
}

func handleRepoSeed(ctx context.Context, svc Service, c *call) (any, error) {
	return repoSeed(ctx, svc, c, true)
}

func handleRepoUnseed(ctx context.Context, svc Service, c *call) (any, error) {
	return repoSeed(ctx, svc, c, false)
}

func repoSeed(ctx context.Context, svc Service, c *call, seed bool) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	return svc.RepoSeed(ctx, p, seed)
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
	if p.Namespace, err = checkNamespace(c, p.Namespace); err != nil {
		return nil, err
	}
	if p.WorkTree != "" {
		if err := checkPath(c, "work_tree", p.WorkTree); err != nil {
			return nil, err
		}
	}
	if p.ObjectsDir != "" {
		if err := checkPath(c, "objects_dir", p.ObjectsDir); err != nil {
			return nil, err
		}
	}
	if p.Own && (p.ObjectsDir != "" || p.Hold) {
		return nil, Errorf(CodeInvalidParams, "%s: own cannot go with objects_dir or hold", c.Method)
	}
	res, err := svc.RepoLocate(ctx, p)
	if err == nil && res.Release != nil {
		release := res.Release
		c.after = func(ctx context.Context) {
			<-ctx.Done() // the client hung up
			release()
		}
	}
	return res, err
}

func handleRepoPublish(ctx context.Context, svc Service, c *call) (any, error) {
	p, err := repoIDParams(c)
	if err != nil {
		return nil, err
	}
	return svc.RepoPublish(ctx, p)
}

// repoIDParams decodes and checks the params of a method that takes
// RepoIDParams.
func repoIDParams(c *call) (RepoIDParams, error) {
	var p RepoIDParams
	if err := decodeParams(c, &p); err != nil {
		return p, err
	}
	var err error
	p.RepoID, err = checkRepoID(c, p.RepoID, true)
	return p, err
}

// checkRepoID parses a repo_id param and returns it in canonical form;
// an empty one is an error only if required.
func checkRepoID(c *call, s string, required bool) (string, error) {
	if s == "" {
		if required {
			return "", Errorf(CodeInvalidParams, "%s: repo_id is required (did:repo:z…)", c.Method)
		}
		return "", nil
	}
	id, err := identity.ParseRepoID(s)
	if err != nil {
		return "", Errorf(CodeInvalidParams, "%s: invalid repo_id: %w", c.Method, err)
	}
	return id.String(), nil
}

// checkNamespace parses an optional namespace param, a did:key (either
// form), and returns it in canonical form.
func checkNamespace(c *call, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	id, err := identity.ParseNodeID(s)
	if err != nil {
		return "", Errorf(CodeInvalidParams, "%s: invalid namespace: %w", c.Method, err)
	}
	return id.String(), nil
}

// checkPath accepts only absolute, clean paths: the daemon's working
// directory is not the caller's, and a path is taken as the caller wrote it
// (cleaning "a/link/.." would change its meaning), so the caller resolves.
func checkPath(c *call, name, p string) error {
	switch {
	case p == "":
		return Errorf(CodeInvalidParams, "%s: %s is required: path must be absolute", c.Method, name)
	case strings.IndexByte(p, 0) >= 0 || !utf8.ValidString(p):
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: a NUL byte or invalid UTF-8", c.Method, name, p)
	case !filepath.IsAbs(p):
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: path must be absolute", c.Method, name, p)
	case filepath.Clean(p) != p:
		return Errorf(CodeInvalidParams, "%s: invalid %s %q: path must be absolute and clean (%q)", c.Method, name, p, filepath.Clean(p))
	}
	return nil
}

// RepoAdd calls repo.add. p.Path must be absolute.
func (c *Client) RepoAdd(ctx context.Context, p RepoAddParams) (RepoInfo, error) {
	return callFor[RepoInfo](ctx, c, MethodRepoAdd, p, nil)
}

// RepoList calls repo.list.
func (c *Client) RepoList(ctx context.Context) ([]RepoInfo, error) {
	return callFor[[]RepoInfo](ctx, c, MethodRepoList, nil, nil)
}

// RepoShow calls repo.show for the repository id ("did:repo:z…").
func (c *Client) RepoShow(ctx context.Context, id string) (RepoDetail, error) {
	return callFor[RepoDetail](ctx, c, MethodRepoShow, RepoIDParams{RepoID: id}, nil)
}

// RepoSync calls repo.sync. onProgress, if not nil, receives the progress
// reports that come before the answer, in order, on the connection's read
// goroutine: it must not block.
func (c *Client) RepoSync(ctx context.Context, id string, onProgress func(Progress)) (SyncResult, error) {
	return callFor[SyncResult](ctx, c, MethodRepoSync, RepoIDParams{RepoID: id}, progressRoute(onProgress))
}

// RepoClone calls repo.clone; onProgress is as for RepoSync. p.Path must be
// absolute.
func (c *Client) RepoClone(ctx context.Context, p RepoCloneParams, onProgress func(Progress)) (CloneResult, error) {
	return callFor[CloneResult](ctx, c, MethodRepoClone, p, progressRoute(onProgress))
}

// RepoPull calls repo.pull; onProgress is as for RepoSync. p.Path must be
// absolute.
func (c *Client) RepoPull(ctx context.Context, p RepoPullParams, onProgress func(Progress)) (PullResult, error) {
	return callFor[PullResult](ctx, c, MethodRepoPull, p, progressRoute(onProgress))
}

// RepoSeed calls repo.seed (seed true) or repo.unseed.
func (c *Client) RepoSeed(ctx context.Context, id string, seed bool) (RepoInfo, error) {
	method := MethodRepoSeed
	if !seed {
		method = MethodRepoUnseed
	}
	return callFor[RepoInfo](ctx, c, method, RepoIDParams{RepoID: id}, nil)
}

// RepoLocate calls repo.locate.
func (c *Client) RepoLocate(ctx context.Context, p RepoLocateParams) (LocateResult, error) {
	return callFor[LocateResult](ctx, c, MethodRepoLocate, p, nil)
}

// RepoPublish calls repo.publish for the repository id.
func (c *Client) RepoPublish(ctx context.Context, id string) (PublishResult, error) {
	return callFor[PublishResult](ctx, c, MethodRepoPublish, RepoIDParams{RepoID: id}, nil)
}

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

func handleRepoVerify(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoVerifyParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, false); err != nil {
		return nil, err
	}
	return svc.RepoVerify(ctx, p)
}

// RepoVerify calls repo.verify; id "" checks every replica.
func (c *Client) RepoVerify(ctx context.Context, id string) (VerifyResult, error) {
	return callFor[VerifyResult](ctx, c, MethodRepoVerify, RepoVerifyParams{RepoID: id}, nil)
}

// MethodRepoRemove takes RepoRemoveParams and returns RemoveResult: the
// node stops sharing, watching and seeding the repository, announces that
// it no longer holds it, forgets what it recorded of it and, unless
// keep_replica, deletes its replica.
const MethodRepoRemove = "repo.remove"

// RepoRemoveParams are the params of repo.remove.
type RepoRemoveParams struct {
	RepoID string `json:"repo_id"`
	// KeepReplica keeps the replica on disk (unseeded).
	KeepReplica bool `json:"keep_replica,omitempty"`
}

// RemoveResult is the result of repo.remove.
type RemoveResult struct {
	RepoID      string `json:"repo_id"`
	KeptReplica bool   `json:"kept_replica"`
}

func handleRepoRemove(ctx context.Context, svc Service, c *call) (any, error) {
	var p RepoRemoveParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	return svc.RepoRemove(ctx, p)
}

// RepoRemove calls repo.remove.
func (c *Client) RepoRemove(ctx context.Context, p RepoRemoveParams) (RemoveResult, error) {
	return callFor[RemoveResult](ctx, c, MethodRepoRemove, p, nil)
}

// MethodRepoSeedRequest takes SeedRequestParams and returns
// SeedRequestResult: the node asks its connected peers that take seed
// requests (relays first) to seed the repository, until Replicas holders
// other than itself are in sync or have accepted, then waits up to
// wait_seconds for Replicas holders to be in sync. Asking again is
// harmless: a peer that seeds it already accepts again.
const MethodRepoSeedRequest = "repo.seed_request"

// Seed request limits.
const (
	MaxSeedReplicas    = 16  // replicas one call may ask for
	DefaultSeedWait    = 60  // seconds to wait for holders in sync, when wait_seconds is absent
	MaxSeedWaitSeconds = 600 // the longest wait
)

// Seed answer codes (SeedAnswer.Code). Append-only.
const (
	SeedAccepted     = "accepted"      // the peer seeds the repository (now, or already)
	SeedNotAccepting = "not-accepting" // the peer takes no seed requests
	SeedOverBudget   = "over-budget"   // the peer's budget for requests (this node's, or all) is used up
	SeedBadRequest   = "bad-request"   // the peer found the request malformed or stale (clocks apart)
	SeedRefused      = "refused"       // refused for another reason: reason says
	SeedNoAnswer     = "no-answer"     // the peer did not answer (reason says why)
)

// SeedRequestParams are the params of repo.seed_request.
type SeedRequestParams struct {
	RepoID string `json:"repo_id"`
	// Replicas is how many holders other than this node should be in
	// sync: 1–MaxSeedReplicas.
	Replicas int `json:"replicas"`
	// WaitSeconds bounds the wait for them to be in sync (absent:
	// DefaultSeedWait; 0: do not wait; at most MaxSeedWaitSeconds).
	WaitSeconds *float64 `json:"wait_seconds,omitempty"`
}

// Wait is the wait the params ask for.
func (p SeedRequestParams) Wait() time.Duration {
	if p.WaitSeconds == nil {
		return DefaultSeedWait * time.Second
	}
	return time.Duration(*p.WaitSeconds * float64(time.Second))
}

// SeedRequestResult is the result of repo.seed_request.
type SeedRequestResult struct {
	RepoID   string `json:"repo_id"`
	Replicas int    `json:"replicas"`
	// Accepted counts the peers asked that accepted.
	Accepted int `json:"accepted"`
	// InSync counts the holders other than this node with the newest
	// signed refs of the canonical namespace, when the call returned.
	InSync int `json:"in_sync"`
	// Answers has one entry per peer asked, in the order asked (an empty
	// array when enough holders were in sync already).
	Answers []SeedAnswer `json:"answers"`
	// Holders is as holder_states of repo.show, when the call returned.
	Holders []HolderStatus `json:"holders"`
}

// SeedAnswer is one peer's answer.
type SeedAnswer struct {
	Node     string `json:"node"`
	Accepted bool   `json:"accepted"`
	Code     string `json:"code"` // a Seed… code
	Reason   string `json:"reason"`
}

func handleRepoSeedRequest(ctx context.Context, svc Service, c *call) (any, error) {
	var p SeedRequestParams
	if err := decodeParams(c, &p); err != nil {
		return nil, err
	}
	var err error
	if p.RepoID, err = checkRepoID(c, p.RepoID, true); err != nil {
		return nil, err
	}
	if p.Replicas < 1 || p.Replicas > MaxSeedReplicas {
		return nil, Errorf(CodeInvalidParams, "%s: replicas must be 1-%d", c.Method, MaxSeedReplicas)
	}
	if w := p.WaitSeconds; w != nil && (*w < 0 || *w > MaxSeedWaitSeconds) {
		return nil, Errorf(CodeInvalidParams, "%s: wait_seconds must be 0-%d", c.Method, MaxSeedWaitSeconds)
	}
	return svc.RepoSeedRequest(ctx, p)
}

// RepoSeedRequest calls repo.seed_request.
func (c *Client) RepoSeedRequest(ctx context.Context, p SeedRequestParams) (SeedRequestResult, error) {
	return callFor[SeedRequestResult](ctx, c, MethodRepoSeedRequest, p, nil)
}
