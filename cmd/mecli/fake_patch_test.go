package main

import (
	"context"
	"strings"

	"github.com/megaengine/megaengine/rpc"
)

// The fake daemon's patch methods record their params and answer with
// fakePatch.

func fakePatch() rpc.PatchDetail {
	id := "3a14442c763d7cba44ef86fa32667095d35f8ce48bf73e709ae2328cfb98ccd4"
	rev := "efa904d23a556ff4bc7edb37ae9ba1b0b59cd1bc07e28f31edcff31e904d818b"
	base, h1, h2 := strings.Repeat("b", 40), strings.Repeat("1", 40), strings.Repeat("2", 40)
	return rpc.PatchDetail{
		PatchSummary: rpc.PatchSummary{ID: id, Title: "Relay fallback", State: rpc.PatchOpen, Author: didBob, AuthorAlias: "bob",
			Labels: []string{}, Base: base, Head: h2, RevisionCount: 2, CreatedMS: 1795219200000, UpdatedMS: 1795219320000},
		Description: "Dial through a relay.",
		Revisions: []rpc.PatchRevision{{ID: id, Author: didBob, Base: base, Head: h1},
			{ID: rev, Author: didBob, Base: base, Head: h2}},
		Reviews: []rpc.PatchReview{{Author: didCarol, AuthorAlias: "carol", Revision: rev, Verdict: rpc.VerdictReject,
			Summary: "One race left.", Comments: []rpc.PatchInlineComment{{Commit: h2, Path: "relay.go", Start: 40, End: 44, Body: "Lock here."}}}},
		Comments: []rpc.PatchComment{},
		Heads:    []string{rev},
	}
}

func (f *fakeDaemon) patchChange(p any) (rpc.PatchChangeResult, error) {
	f.record(p)
	return rpc.PatchChangeResult{Change: fakePatch().ID, Patch: fakePatch()}, nil
}

func (f *fakeDaemon) PatchOpen(_ context.Context, p rpc.PatchOpenParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchList(_ context.Context, p rpc.PatchListParams) ([]rpc.PatchSummary, error) {
	f.record(p)
	return []rpc.PatchSummary{fakePatch().PatchSummary}, nil
}
func (f *fakeDaemon) PatchShow(_ context.Context, p rpc.PatchIDParams) (rpc.PatchDetail, error) {
	f.record(p)
	return fakePatch(), nil
}
func (f *fakeDaemon) PatchReview(_ context.Context, p rpc.PatchReviewParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchComment(_ context.Context, p rpc.PatchCommentParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchRevise(_ context.Context, p rpc.PatchReviseParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchClose(_ context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchReopen(_ context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchReady(_ context.Context, p rpc.PatchIDParams) (rpc.PatchChangeResult, error) {
	return f.patchChange(p)
}
func (f *fakeDaemon) PatchCheckout(_ context.Context, p rpc.PatchCheckoutParams) (rpc.PatchCheckoutResult, error) {
	f.record(p)
	return rpc.PatchCheckoutResult{Branch: "patch/3a14442", Revision: fakePatch().Heads[0], Head: fakePatch().Head}, nil
}
