package collab

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Open opens a new issue in repo and returns its state. Labels are kept
// only if this node is a delegate of repo.
func (s *Service) Open(ctx context.Context, repo identity.RepoID, title, body string, labels []string) (*cob.Issue, error) {
	s.write.Lock()
	defer s.write.Unlock()
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, err
	}
	auth := doc
	if !auth.IsDelegate(s.cfg.Key.ID()) {
		labels = nil // the fold would skip them (spec/collab.md §5.2)
	}
	open := &cob.Open{Title: title, Body: body, Labels: sortedSet(labels)}
	ch, err := cob.NewChange(s.cfg.Key, cob.TypeIssue, cob.ObjectID{}, nil, []cob.Action{open}, s.cfg.Now())
	if err != nil {
		return nil, errorf(ErrInvalid, "%v", err)
	}
	issue, _, err := s.check(ch, ch.ID(), nil, auth)
	if err != nil {
		return nil, err
	}
	if err := s.store(ctx, repo, bare, ch, nil, ""); err != nil {
		return nil, err
	}
	return issue, nil
}

// Act adds a change with the given actions to issue id of repo, on top of
// every head this node has of it, and returns the new state and the
// change's id (a comment's id). An action the fold would skip is refused
// (ErrPermission or ErrNotFound for a comment that does not exist) and
// nothing is written.
func (s *Service) Act(ctx context.Context, repo identity.RepoID, id cob.ObjectID, actions ...cob.Action) (*cob.Issue, cob.ChangeID, error) {
	s.write.Lock()
	defer s.write.Unlock()
	f, refs, err := s.foldOne(ctx, repo, cob.TypeIssue, id)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	bare, doc, err := s.open(repo)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	byID := map[cob.ChangeID]*cob.Change{}
	for _, c := range f.changes {
		byID[c.ID()] = c
	}
	parents := make([]*cob.Change, 0, len(f.issue.Heads))
	for _, h := range f.issue.Heads {
		parents = append(parents, byID[h])
	}
	ch, err := cob.NewChange(s.cfg.Key, cob.TypeIssue, id, parents, actions, s.cfg.Now())
	if err != nil {
		return nil, cob.ChangeID{}, errorf(ErrInvalid, "%v", err)
	}
	issue, _, err := s.check(ch, id, f.changes, doc)
	if err != nil {
		return nil, cob.ChangeID{}, err
	}
	commits := make([]string, 0, len(parents))
	for _, p := range ch.Parents() {
		commits = append(commits, f.commits[p])
	}
	if err := s.store(ctx, repo, bare, ch, commits, refs.ns[s.self]); err != nil {
		return nil, cob.ChangeID{}, err
	}
	return issue, ch.ID(), nil
}

// check folds the object with the new change ch and refuses it if the
// fold would skip or reject any of its actions.
func (s *Service) check(ch *cob.Change, object cob.ObjectID, have []*cob.Change, auth cob.Authority) (*cob.Issue, cob.Report, error) {
	issue, report, err := cob.FoldIssue(object, append(slices.Clip(have), ch), auth)
	if err != nil {
		return nil, report, errorf(ErrInvalid, "%v", err)
	}
	if err := refusal(ch, report); err != nil {
		return nil, report, err
	}
	return issue, report, nil
}

// refusal is the error for a new change ch that the fold rejected or
// some of whose actions it skipped (nil if it applied all of them).
func refusal(ch *cob.Change, report cob.Report) error {
	for _, r := range report.Rejected {
		if r.ID == ch.ID() {
			return errorf(ErrInvalid, "the change would be rejected: %v", r.Err)
		}
	}
	for _, sk := range report.Skipped {
		if sk.Change != ch.ID() {
			continue
		}
		switch {
		case errors.Is(sk.Err, cob.ErrUnauthorized):
			return errorf(ErrPermission, "%s: only a delegate (or, for some actions, the author) may do this: %v", sk.Type, sk.Err)
		case errors.Is(sk.Err, cob.ErrNoSuchComment), errors.Is(sk.Err, cob.ErrNoSuchRevision):
			return errorf(ErrNotFound, "%s: %v", sk.Type, sk.Err)
		default:
			return errorf(ErrInvalid, "%s: %v", sk.Type, sk.Err)
		}
	}
	return nil
}

// store writes ch as a commit on parents in this node's namespace, moves
// the object's ref from old, re-signs and announces the namespace, and
// announces the new head.
func (s *Service) store(ctx context.Context, repo identity.RepoID, bare *gitstore.Bare, ch *cob.Change, parents []string, old string) error {
	object, typ := ch.ObjectID(), ch.Type()
	_, err := bare.WriteChange(ctx, s.self, cob.RefName(typ, object), old, gitstore.ChangeCommit{
		BlobName: cob.BlobName, Blob: ch.Marshal(), Parents: parents,
		Message: fmt.Sprintf("%s change %s", typ, ch.ID()), Author: s.cfg.Key.ID().String(),
	})
	if err != nil {
		return fmt.Errorf("writing change %s: %w", ch.ID().Short(), err)
	}
	if err := s.cfg.Replica.PublishOwn(ctx, repo); err != nil {
		return fmt.Errorf("publishing change %s: %w", ch.ID().Short(), err)
	}
	if err := s.cfg.Announce(&wire.ActivityAnnouncement{Repo: repo, Heads: [][32]byte{ch.ID()}}); err != nil {
		s.log.Warn("announcing a new change failed; holders still fetch it after the repository announcement", "repo", repo, "change", ch.ID().Short(), "err", err)
	}
	s.log.Info("wrote a change", "repo", repo, string(typ), object.Short(), "change", ch.ID().Short())
	s.cfg.OnChanged(repo, typ, object)
	return nil
}

// sortedSet sorts and deduplicates a list for an action (the change
// format wants strictly ascending lists).
func sortedSet(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	return slices.Compact(out)
}
