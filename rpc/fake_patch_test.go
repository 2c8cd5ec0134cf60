package rpc

import (
	"context"
	"strings"
)

// The patch fixture: one patch of repoExample by bob, two revisions, a
// review of the second by carol (the delegate).
const (
	patchExample    = "3a14442c763d7cba44ef86fa32667095d35f8ce48bf73e709ae2328cfb98ccd4"
	revisionExample = "efa904d23a556ff4bc7edb37ae9ba1b0b59cd1bc07e28f31edcff31e904d818b"
	patchChange     = "b7c1e0a2d4f6b8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4f6a8"
	baseExample     = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	head1Example    = "1f2e3d4c5b6a79880716253443526170809a0b1c"
	head2Example    = "2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d"
)

func fixturePatch() PatchDetail {
	return PatchDetail{
		PatchSummary: PatchSummary{
			ID: patchExample, Title: "Relay fallback", State: PatchOpen, Author: didBob, AuthorAlias: "bob",
			Labels: []string{}, Base: baseExample, Head: head2Example, RevisionCount: 2,
			CreatedMS: 1795219200000, UpdatedMS: 1795219380000,
		},
		Description: "Dial through a relay when hole punching fails.",
		Revisions: []PatchRevision{
			{ID: patchExample, Author: didBob, Description: "Dial through a relay when hole punching fails.", Base: baseExample, Head: head1Example, CreatedMS: 1795219200000},
			{ID: revisionExample, Author: didBob, Description: "Lock the relay table.", Base: baseExample, Head: head2Example, CreatedMS: 1795219320000},
		},
		Reviews: []PatchReview{{
			Author: didCarol, AuthorAlias: "carol", Revision: revisionExample, Verdict: VerdictReject, Summary: "One race left.",
			Comments:  []PatchInlineComment{{Commit: head2Example, Path: "daemon/relay.go", Start: 40, End: 44, Body: "Hold the lock here."}},
			CreatedMS: 1795219380000,
		}},
		Comments: []PatchComment{},
		Heads:    []string{commentExample},
	}
}

func (f *fakeService) patchFor(repo, id string) (PatchDetail, error) {
	if repo != repoExample {
		return PatchDetail{}, notFound(repo)
	}
	if !strings.HasPrefix(patchExample, id) {
		return PatchDetail{}, Errorf(CodeNotFound, "no patch %q in %s", id, repo)
	}
	return fixturePatch(), nil
}

// patchChanged is the answer of a change to the fixture patch.
func (f *fakeService) patchChanged(repo, id string, apply func(*PatchDetail)) (PatchChangeResult, error) {
	p, err := f.patchFor(repo, id)
	if err != nil {
		return PatchChangeResult{}, err
	}
	apply(&p)
	p.UpdatedMS = 1795219620000
	p.Heads = []string{patchChange}
	return PatchChangeResult{Change: patchChange, Patch: p}, nil
}

func (f *fakeService) PatchOpen(ctx context.Context, p PatchOpenParams) (PatchChangeResult, error) {
	if p.RepoID != repoExample {
		return PatchChangeResult{}, notFound(p.RepoID)
	}
	d := fixturePatch()
	d.Title, d.Description, d.Base, d.Head, d.RevisionCount = p.Title, p.Description, p.Base, p.Head, 1
	d.Revisions = []PatchRevision{{ID: patchExample, Author: didBob, Description: p.Description, Base: p.Base, Head: p.Head, CreatedMS: d.CreatedMS}}
	d.Reviews, d.UpdatedMS, d.Heads = []PatchReview{}, d.CreatedMS, []string{patchExample}
	if p.Draft {
		d.State = PatchDraft
	}
	return PatchChangeResult{Change: patchExample, Patch: d}, nil
}

func (f *fakeService) PatchList(ctx context.Context, p PatchListParams) ([]PatchSummary, error) {
	if p.RepoID != repoExample {
		return nil, notFound(p.RepoID)
	}
	if p.State != PatchOpen && p.State != PatchAll {
		return nil, nil
	}
	return []PatchSummary{fixturePatch().PatchSummary}, nil
}

func (f *fakeService) PatchShow(ctx context.Context, p PatchIDParams) (PatchDetail, error) {
	return f.patchFor(p.RepoID, p.ID)
}

func (f *fakeService) PatchReview(ctx context.Context, p PatchReviewParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) {
		r := PatchReview{Author: didAlice, AuthorAlias: "alice-laptop", Revision: revisionExample, Verdict: p.Verdict,
			Summary: p.Summary, Comments: []PatchInlineComment{}, CreatedMS: 1795219620000}
		for _, c := range p.Comments {
			if c.Commit == "" {
				c.Commit = head2Example
			}
			r.Comments = append(r.Comments, c)
		}
		d.Reviews = append(d.Reviews, r)
	})
}

func (f *fakeService) PatchComment(ctx context.Context, p PatchCommentParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) {
		c := PatchComment{IssueComment: IssueComment{ID: patchChange, Author: didAlice, AuthorAlias: "alice-laptop",
			Body: p.Body, CreatedMS: 1795219620000, Reactions: map[string][]string{}}}
		if p.Revision != "" {
			c.Revision = revisionExample
		}
		d.Comments = append(d.Comments, c)
	})
}

func (f *fakeService) PatchRevise(ctx context.Context, p PatchReviseParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) {
		d.Revisions = append(d.Revisions, PatchRevision{ID: patchChange, Author: didBob, Description: p.Description,
			Base: p.Base, Head: p.Head, CreatedMS: 1795219620000})
		d.Base, d.Head, d.RevisionCount = p.Base, p.Head, len(d.Revisions)
	})
}

func (f *fakeService) PatchClose(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) { d.State = PatchClosed })
}

func (f *fakeService) PatchReopen(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) { d.State = PatchOpen })
}

func (f *fakeService) PatchReady(ctx context.Context, p PatchIDParams) (PatchChangeResult, error) {
	return f.patchChanged(p.RepoID, p.ID, func(d *PatchDetail) { d.State = PatchOpen })
}

func (f *fakeService) PatchCheckout(ctx context.Context, p PatchCheckoutParams) (PatchCheckoutResult, error) {
	if _, err := f.patchFor(p.RepoID, p.ID); err != nil {
		return PatchCheckoutResult{}, err
	}
	return PatchCheckoutResult{Branch: "patch/" + patchExample[:7], Revision: revisionExample, Head: head2Example}, nil
}
