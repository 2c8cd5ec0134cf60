package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Chain returns repo's verified identity chain, or ErrNotFound if the node
// holds none. It is read from the store once and kept.
func (s *Service) Chain(repo identity.RepoID) (*wire.DocChain, error) {
	s.mu.Lock()
	c := s.docs[repo]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	first, ok, err := s.store.RepoDoc(repo)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(ErrNotFound, "this node holds no replica of %s", repo)
	}
	later, err := s.store.DocVersions(repo)
	if err != nil {
		return nil, err
	}
	if c, err = wire.OpenDocChain(first, later); err != nil {
		return nil, fmt.Errorf("the stored identity of %s: %w", repo, err)
	}
	s.mu.Lock()
	s.docs[repo] = c
	s.mu.Unlock()
	return c, nil
}

// Doc returns the newest version of repo's identity document (who the
// delegates are now), or ErrNotFound if the node holds none.
func (s *Service) Doc(repo identity.RepoID) (*wire.RepoDoc, error) {
	c, err := s.Chain(repo)
	if err != nil {
		return nil, err
	}
	return c.Latest(), nil
}

// Proposal returns the pending next version of repo's document (nil if none).
func (s *Service) Proposal(repo identity.RepoID) *wire.RepoDoc {
	raw, ok, err := s.store.DocProposal(repo)
	if err != nil || !ok {
		return nil
	}
	p, err := wire.OpenRepoDoc(raw)
	if err != nil {
		return nil
	}
	return p
}

// putChain stores a chain that extends the one held (or the first) and
// drops a proposal it has made stale. The caller holds s.publish.
func (s *Service) putChain(repo identity.RepoID, c *wire.DocChain) error {
	if _, ok, err := s.store.RepoDoc(repo); err != nil {
		return err
	} else if !ok {
		if err := s.store.PutRepoDoc(repo, c.FirstRaw()); err != nil {
			return err
		}
	}
	if c.Len() > 1 {
		if err := s.store.PutDocVersions(repo, c.Later()); err != nil {
			return err
		}
	}
	if p := s.Proposal(repo); p != nil && p.Version() <= c.Latest().Version() {
		if err := s.store.PutDocProposal(repo, nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.docs[repo] = c
	s.mu.Unlock()
	return nil
}

// adoptChain keeps the longer of the held chain and one a holder sent, if
// one extends the other; a fork (two valid successors of one version) is
// logged and the held chain kept: the first accepted stands. The caller
// holds s.publish.
func (s *Service) adoptChain(repo identity.RepoID, offered *wire.DocChain, proposal []byte) error {
	held, err := s.Chain(repo)
	switch {
	case errors.Is(err, ErrNotFound):
		held = nil
	case err != nil:
		return err
	}
	if held == nil || (offered.Len() > held.Len() && offered.Extends(held)) {
		if err := s.putChain(repo, offered); err != nil {
			return err
		}
		if held != nil {
			s.log.Info("identity document updated", "repo", repo, "version", offered.Latest().Version(), "name", offered.Latest().Name())
		}
		held = offered
	} else if !held.Extends(offered) {
		s.log.Warn("a holder sent a forked identity document; keeping ours", "repo", repo, "ours", held.Latest().Version(), "theirs", offered.Latest().Version())
		return nil
	}
	if proposal != nil {
		s.mergeProposal(repo, held, proposal)
	}
	return nil
}

// mergeProposal keeps a next version a holder sent that our newest
// version authorizes (every signer one of its delegates): merged with ours
// if it is the same, and applied once signed by a threshold; a different
// one replaces ours only if it has more signatures, so a holder replaying
// another delegate's proposal cannot drop the one this node signed.
// Anything else is ignored: a proposal costs at most one stored document
// per repository.
func (s *Service) mergeProposal(repo identity.RepoID, held *wire.DocChain, raw []byte) {
	p, err := wire.OpenRepoDoc(raw)
	if err != nil {
		return
	}
	if _, err := held.Latest().CheckNext(p); err != nil {
		return
	}
	if pending := s.Proposal(repo); pending != nil && pending.Digest() != p.Digest() && len(p.Signers()) <= len(pending.Signers()) {
		return
	}
	if _, err := s.applyProposal(repo, held, p); err != nil {
		s.log.Warn("keeping a document proposal", "repo", repo, "err", err)
	}
}

// applyProposal merges p with the stored proposal of the same version and
// content, then appends it to the chain if it has enough signatures, or
// stores it as the pending proposal. It reports whether it was applied.
// The caller holds s.publish.
func (s *Service) applyProposal(repo identity.RepoID, held *wire.DocChain, p *wire.RepoDoc) (applied bool, err error) {
	if pending := s.Proposal(repo); pending != nil && pending.Digest() == p.Digest() {
		if p, err = p.Merge(pending); err != nil {
			return false, err
		}
	}
	if next, err := held.Append(p); err == nil {
		return true, s.putChain(repo, next)
	}
	raw, err := p.Marshal()
	if err != nil {
		return false, err
	}
	return false, s.store.PutDocProposal(repo, raw)
}

// EditResult is what Edit signed.
type EditResult struct {
	Doc     *wire.RepoDoc // the new version, or the proposal
	Applied bool          // it is the repository's newest version now
	Missing int           // signatures of delegates it still needs (0 once applied)
}

// Edit signs the next version of repo's identity document, made by
// change from the newest version: applied at once if this node's
// signature is enough (threshold 1, or the others have signed the same
// proposal), otherwise kept as a proposal the other delegates see when
// they next fetch from this node and sign by making the same change. The
// node re-signs its refs so holders fetch the new version.
func (s *Service) Edit(ctx context.Context, repo identity.RepoID, change func(*wire.DocChange) error) (EditResult, error) {
	s.publish.Lock()
	res, err := s.edit(repo, change)
	s.publish.Unlock()
	if err != nil {
		return res, err
	}
	return res, s.republish(repo)
}

func (s *Service) edit(repo identity.RepoID, change func(*wire.DocChange) error) (EditResult, error) {
	held, err := s.Chain(repo)
	if err != nil {
		return EditResult{}, err
	}
	cur := held.Latest()
	if !cur.IsDelegate(s.id) {
		return EditResult{}, errorf(ErrPermission, "this node is not a delegate of %s: only its delegates can change its identity", repo)
	}
	if held.Len() >= wire.MaxDocVersions {
		return EditResult{}, errorf(ErrInvalid, "%s has %d identity versions, the most there can be", repo, wire.MaxDocVersions)
	}
	c := cur.Change()
	if err := change(&c); err != nil {
		return EditResult{}, err
	}
	next, err := cur.Next(c)
	if err != nil {
		return EditResult{}, errorf(ErrInvalid, "%w", err)
	}
	if next, err = next.Sign(s.cfg.Key); err != nil {
		return EditResult{}, err
	}
	applied, err := s.applyProposal(repo, held, next)
	if err != nil {
		return EditResult{}, err
	}
	res := EditResult{Doc: next, Applied: applied}
	if applied {
		res.Doc, _ = s.Doc(repo)
	} else if p := s.Proposal(repo); p != nil {
		res.Doc = p
		res.Missing, _ = cur.CheckNext(p)
	}
	s.log.Info("identity document signed", "repo", repo, "version", next.Version(), "applied", applied)
	return res, nil
}

// republish signs this node's refs of repo again (the same refs, a newer
// seq) and announces them, so holders fetch from it and get its newest
// identity document and proposal.
func (s *Service) republish(repo identity.RepoID) error {
	s.publish.Lock()
	defer s.publish.Unlock()
	var refs []wire.Ref
	if raw, _, ok, err := s.store.SignedRefs(repo, s.id); err != nil {
		return err
	} else if ok {
		sr, err := wire.UnmarshalSignedRefs(raw)
		if err != nil {
			return err
		}
		refs = sr.Refs()
	}
	return s.signRefs(repo, fromWireRefs(refs), nil)
}

// EditDelegates returns a change that adds or removes a delegate, keeping
// the threshold within the new number of delegates.
func EditDelegates(id identity.NodeID, add bool) func(*wire.DocChange) error {
	return func(c *wire.DocChange) error {
		has := slices.Contains(c.Delegates, id)
		switch {
		case add && has:
			return errorf(ErrConflict, "%s is already a delegate", id)
		case !add && !has:
			return errorf(ErrNotFound, "%s is not a delegate", id)
		case add:
			c.Delegates = append(c.Delegates, id)
		default:
			c.Delegates = slices.DeleteFunc(c.Delegates, func(d identity.NodeID) bool { return d == id })
			if len(c.Delegates) == 0 {
				return errorf(ErrInvalid, "a repository keeps at least one delegate")
			}
			c.Threshold = min(c.Threshold, len(c.Delegates))
		}
		return nil
	}
}
