package rpc

import "context"

// RepoVerify serves repo.verify: repoExample's replica is sound but
// someone moved carol's main on disk (reset); repoTiny is sound.
func (f *fakeService) RepoVerify(ctx context.Context, p RepoVerifyParams) (VerifyResult, error) {
	f.record(p)
	example := RepoVerify{RepoID: repoExample, Name: "example", OK: false, Namespaces: []NamespaceVerify{
		{Node: didAlice, Seq: seqAlice, OK: true},
		{Node: didCarol, Seq: 1795250000000, OK: false, Problem: "the refs of …hhvjP in this node's replica of " + repoExample +
			" differed from its signed refs (moved refs/heads/main), so they were not served; it was reset to the signed refs"},
	}}
	tiny := RepoVerify{RepoID: repoTiny, Name: "tiny", OK: true, Namespaces: []NamespaceVerify{{Node: didAlice, Seq: 1795240000000, OK: true}}}
	switch p.RepoID {
	case "":
		return VerifyResult{OK: false, Checked: 2, Failed: 1, Repos: []RepoVerify{example, tiny}}, nil
	case repoTiny:
		return VerifyResult{OK: true, Checked: 1, Repos: []RepoVerify{tiny}}, nil
	case repoNotes:
		return VerifyResult{}, Errorf(CodeNotFound, "this node holds no replica of %s", p.RepoID)
	}
	return VerifyResult{}, notFound(p.RepoID)
}
