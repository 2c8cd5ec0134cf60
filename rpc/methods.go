package rpc

// Version is the daemon's version, reported by node.info. Release builds set
// it with -ldflags "-X github.com/megaengine/megaengine/rpc.Version=v1.2.3".
var Version = "dev"

// Method names. A released name keeps its meaning and its params stay
// backwards compatible (new params are optional); a method that must change
// incompatibly gets a new name. Each name is documented in spec/rpc.md under
// a heading of its own (a test checks it).
const (
	// MethodNodeInfo takes no params and returns NodeInfo: who this node is,
	// where it listens, its version and counters.
	MethodNodeInfo = "node.info"

	// MethodNodePeers takes no params and returns []Peer, the nodes this one
	// is connected to now (an empty array, never null).
	MethodNodePeers = "node.peers"

	// MethodNodeList takes no params and returns []NodeEntry, every node in
	// the routing table, this one included (an empty array, never null).
	MethodNodeList = "node.list"

	// MethodNodeConnect takes ConnectParams and returns the Peer once the
	// connection is authenticated.
	MethodNodeConnect = "node.connect"

	// MethodNodeStop takes no params and returns StopResult; once the
	// answer is sent the daemon shuts down cleanly, as on SIGTERM.
	MethodNodeStop = "node.stop"

	// MethodEventsSubscribe takes SubscribeParams and returns
	// SubscribeResult; after that answer the daemon sends an "event"
	// notification (params Event) for every matching event, in order, until
	// the connection closes.
	MethodEventsSubscribe = "events.subscribe"

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

	// For git's remote helper (cmd/git-remote-mega): where a repository's
	// replica is, and publishing what a push wrote into it.

	// MethodRepoLocate takes RepoLocateParams and returns LocateResult: the
	// bare replica of a repository and the namespace to serve from it.
	MethodRepoLocate = "repo.locate"
	// MethodRepoPublish takes RepoIDParams and returns PublishResult: the
	// node signs the refs of its own namespace of the replica (after a
	// git push into it) and announces them.
	MethodRepoPublish = "repo.publish"

	// Issues (spec/collab.md). Each takes the Issue…Params of its name;
	// issue.list returns []IssueSummary, issue.show IssueDetail, the others
	// IssueChangeResult once the change is written, signed and announced.
	MethodIssueOpen    = "issue.open"
	MethodIssueList    = "issue.list"
	MethodIssueShow    = "issue.show"
	MethodIssueComment = "issue.comment"
	MethodIssueEdit    = "issue.edit"
	MethodIssueLabel   = "issue.label"
	MethodIssueAssign  = "issue.assign"
	MethodIssueClose   = "issue.close"
	MethodIssueReopen  = "issue.reopen"
	MethodIssueReact   = "issue.react"

	// Patches (spec/collab.md §8). Each takes the Patch…Params of its
	// name; patch.list returns []PatchSummary, patch.show PatchDetail,
	// patch.checkout PatchCheckoutResult, the others PatchChangeResult.
	MethodPatchOpen     = "patch.open"
	MethodPatchList     = "patch.list"
	MethodPatchShow     = "patch.show"
	MethodPatchReview   = "patch.review"
	MethodPatchComment  = "patch.comment"
	MethodPatchRevise   = "patch.revise"
	MethodPatchClose    = "patch.close"
	MethodPatchReopen   = "patch.reopen"
	MethodPatchReady    = "patch.ready"
	MethodPatchCheckout = "patch.checkout"
)

// MethodInfo describes one method of the table.
type MethodInfo struct {
	Name string
	// Mutating is true for methods that change the node's state (connect,
	// add a repository, …) and false for those that only read it.
	Mutating bool
	// Summary is one line for listings and help texts: spec/rpc.md's
	// table of methods and mecli's help show it as it is (tests check
	// both), so it is written for a user, in lower case, without a period.
	Summary string
}

// method is one entry of the dispatch table: its description and handler.
type method struct {
	MethodInfo
	handle handlerFunc
}

// methodTable is the one method table: the server dispatches from it, the
// docs, mecli's help and the tests read it. Adding a method is one entry here
// (plus its types, handler and Client method in the file of its family —
// node.go, events.go, repo.go, repo_identity.go, issue.go, patch.go — and its section in spec/rpc.md). Order: as
// listed in the spec.
var methodTable = []method{
	{MethodInfo{MethodNodeInfo, false, "who this node is: id, alias, addresses, version, counters"}, handleNodeInfo},
	{MethodInfo{MethodNodePeers, false, "the nodes connected now"}, handleNodePeers},
	{MethodInfo{MethodNodeList, false, "every node in the routing table"}, handleNodeList},
	{MethodInfo{MethodNodeConnect, true, "connect to a node at did:key:…@host:port"}, handleNodeConnect},
	{MethodInfo{MethodNodeStop, true, "stop the daemon cleanly, as SIGTERM does"}, handleNodeStop},
	{MethodInfo{MethodEventsSubscribe, false, "the node's events as they happen: peers, nodes, repositories"}, handleEventsSubscribe},
	{MethodInfo{MethodRepoAdd, true, "share a working git repository under a new did:repo and keep publishing it"}, handleRepoAdd},
	{MethodInfo{MethodRepoList, false, "every repository the node knows, with replica and working-copy state"}, handleRepoList},
	{MethodInfo{MethodRepoShow, false, "one repository: identity, holders, every namespace's signed refs"}, handleRepoShow},
	{MethodInfo{MethodRepoSync, true, "fetch a repository's newest signed refs from the network now"}, handleRepoSync},
	{MethodInfo{MethodRepoClone, true, "make a working copy from the local replica (origin mega://<repo-id>)"}, handleRepoClone},
	{MethodInfo{MethodRepoPull, true, "fast-forward a working copy to the replica's branch"}, handleRepoPull},
	{MethodInfo{MethodRepoSeed, true, "replicate a repository from now on"}, handleRepoSeed},
	{MethodInfo{MethodRepoUnseed, true, "stop replicating a repository (the replica is kept)"}, handleRepoUnseed},
	{MethodInfo{MethodRepoSeedRequest, true, "ask relays and accepting peers to seed a repository, up to N in-sync holders"}, handleRepoSeedRequest},
	{MethodInfo{MethodRepoLocate, true, "where the bare replica is and which namespace to serve or push into (for git-remote-mega)"}, handleRepoLocate},
	{MethodInfo{MethodRepoPublish, true, "sign and announce this node's namespace after a git push into it"}, handleRepoPublish},
	{MethodInfo{MethodRepoVerify, true, "check replicas: git fsck, and every namespace against its signed refs (repairing)"}, handleRepoVerify},
	{MethodInfo{MethodRepoRemove, true, "stop sharing or seeding a repository, withdraw it, free its disk"}, handleRepoRemove},
	{MethodInfo{MethodRepoEdit, true, "sign a new identity version: name, description, threshold (delegates)"}, handleRepoEdit},
	{MethodInfo{MethodRepoDelegateAdd, true, "sign a new identity version with one more delegate"}, handleRepoDelegate(true)},
	{MethodInfo{MethodRepoDelegateRemove, true, "sign a new identity version without a delegate"}, handleRepoDelegate(false)},
	{MethodInfo{MethodIssueOpen, true, "open an issue in a repository"}, handleIssueOpen},
	{MethodInfo{MethodIssueList, false, "the issues of a repository, newest first"}, handleIssueList},
	{MethodInfo{MethodIssueShow, false, "one issue with its comments"}, handleIssueShow},
	{MethodInfo{MethodIssueComment, true, "comment on an issue, or reply to a comment"}, handleIssueComment},
	{MethodInfo{MethodIssueEdit, true, "change an issue's title or body"}, handleIssueEdit},
	{MethodInfo{MethodIssueLabel, true, "add and remove an issue's labels (delegates)"}, handleIssueLabel},
	{MethodInfo{MethodIssueAssign, true, "add and remove an issue's assignees (delegates)"}, handleIssueAssign},
	{MethodInfo{MethodIssueClose, true, "close an issue as solved or other"}, handleIssueClose},
	{MethodInfo{MethodIssueReopen, true, "reopen a closed issue"}, handleIssueReopen},
	{MethodInfo{MethodIssueReact, true, "react to an issue or a comment with an emoji"}, handleIssueReact},
	{MethodInfo{MethodPatchOpen, true, "open a patch on commits the replica holds"}, handlePatchOpen},
	{MethodInfo{MethodPatchList, false, "the patches of a repository, newest first"}, handlePatchList},
	{MethodInfo{MethodPatchShow, false, "one patch with its revisions, reviews and comments"}, handlePatchShow},
	{MethodInfo{MethodPatchReview, true, "accept or reject a revision, with inline comments"}, handlePatchReview},
	{MethodInfo{MethodPatchComment, true, "comment on a patch or one of its revisions"}, handlePatchComment},
	{MethodInfo{MethodPatchRevise, true, "add a revision (new base and head) to a patch"}, handlePatchRevise},
	{MethodInfo{MethodPatchClose, true, "close a patch"}, handlePatchClose},
	{MethodInfo{MethodPatchReopen, true, "reopen a closed patch"}, handlePatchReopen},
	{MethodInfo{MethodPatchReady, true, "mark a draft patch ready for review"}, handlePatchReady},
	{MethodInfo{MethodPatchCheckout, true, "point the branch patch/<short-id> of a working copy at the latest revision"}, handlePatchCheckout},
}

// Methods returns the method table, in the order of the spec.
func Methods() []MethodInfo {
	out := make([]MethodInfo, len(methodTable))
	for i, m := range methodTable {
		out[i] = m.MethodInfo
	}
	return out
}

// LookupMethod returns the description of the named method.
func LookupMethod(name string) (MethodInfo, bool) {
	for _, m := range methodTable {
		if m.Name == name {
			return m.MethodInfo, true
		}
	}
	return MethodInfo{}, false
}
