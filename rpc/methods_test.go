package rpc

import "testing"

// Every method is in the table once, dispatched by the server, summarised,
// and marked as a read or a write.
func TestMethodTable(t *testing.T) {
	mutating := map[string]bool{
		MethodNodeInfo: false, MethodNodePeers: false, MethodNodeList: false, MethodNodeConnect: true, MethodNodeStop: true, MethodEventsSubscribe: false,
		MethodRepoAdd: true, MethodRepoList: false, MethodRepoShow: false, MethodRepoSync: true,
		MethodRepoClone: true, MethodRepoPull: true, MethodRepoSeed: true, MethodRepoUnseed: true, MethodRepoSeedRequest: true,
		// repo.locate records a clone (work_tree) and, with own, prepares
		// the replica for a push; repo.verify repairs what it finds.
		MethodRepoLocate: true, MethodRepoPublish: true, MethodRepoVerify: true, MethodRepoRemove: true,
		MethodRepoEdit: true, MethodRepoDelegateAdd: true, MethodRepoDelegateRemove: true,
		MethodIssueOpen: true, MethodIssueList: false, MethodIssueShow: false, MethodIssueComment: true,
		MethodIssueEdit: true, MethodIssueLabel: true, MethodIssueAssign: true, MethodIssueClose: true,
		MethodIssueReopen: true, MethodIssueReact: true,
		MethodPatchOpen: true, MethodPatchList: false, MethodPatchShow: false, MethodPatchReview: true,
		MethodPatchComment: true, MethodPatchRevise: true, MethodPatchClose: true, MethodPatchReopen: true,
		MethodPatchReady: true, MethodPatchCheckout: true,
	}
	srv := NewServer(newFake(), nil)
	names := map[string]bool{}
	for _, m := range Methods() {
		if names[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		names[m.Name] = true
		if _, ok := srv.methods[m.Name]; !ok {
			t.Errorf("%s is in the table but not dispatched", m.Name)
		}
		if m.Summary == "" {
			t.Errorf("%s has no summary", m.Name)
		}
		want, ok := mutating[m.Name]
		if !ok {
			t.Errorf("%s is in the table but not in this test", m.Name)
		} else if m.Mutating != want {
			t.Errorf("%s: Mutating = %v, want %v", m.Name, m.Mutating, want)
		}
		if got, ok := LookupMethod(m.Name); !ok || got != m {
			t.Errorf("LookupMethod(%s) = %+v, %v", m.Name, got, ok)
		}
	}
	for name := range mutating {
		if !names[name] {
			t.Errorf("%s is missing from the table", name)
		}
	}
	if _, ok := LookupMethod("node.reboot"); ok {
		t.Error("LookupMethod found a method that does not exist")
	}
}
