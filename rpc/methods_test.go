package rpc

import "testing"

func TestMethodTable(t *testing.T) {
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
	}
	for _, name := range []string{MethodNodeInfo, MethodNodePeers, MethodNodeList, MethodNodeConnect, MethodEventsSubscribe} {
		if !names[name] {
			t.Errorf("%s is missing from the table", name)
		}
	}
	if m, _ := LookupMethod(MethodNodeConnect); !m.Mutating {
		t.Error("node.connect must be marked as a write")
	}
	if m, _ := LookupMethod(MethodNodeInfo); m.Mutating {
		t.Error("node.info must be marked as a read")
	}
}

func TestRepoMethodTable(t *testing.T) {
	for name, mutating := range map[string]bool{
		MethodRepoAdd: true, MethodRepoList: false, MethodRepoShow: false, MethodRepoSync: true,
		MethodRepoClone: true, MethodRepoPull: true, MethodRepoSeed: true, MethodRepoUnseed: true,
	} {
		m, ok := LookupMethod(name)
		if !ok {
			t.Errorf("%s is not in the method table", name)
			continue
		}
		if m.Mutating != mutating {
			t.Errorf("%s: Mutating = %v, want %v", name, m.Mutating, mutating)
		}
	}
}

func TestRemoteMethodTable(t *testing.T) {
	for name, mutating := range map[string]bool{MethodRepoLocate: false, MethodRepoPublish: true} {
		m, ok := LookupMethod(name)
		if !ok {
			t.Errorf("%s is not in the method table", name)
			continue
		}
		if m.Mutating != mutating {
			t.Errorf("%s: Mutating = %v, want %v", name, m.Mutating, mutating)
		}
	}
}
