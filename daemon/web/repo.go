package web

import (
	"context"
	"slices"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Resolving what a URL names: a repository id, a ref, a path. Every value
// is checked before it reaches git: ids are parsed, refs must be one of the
// creator's signed refs (or a full object id that is a commit), and path
// components are looked up by exact name in trees git lists.

// repoView is a repository with its signed refs and its replica.
type repoView struct {
	Repo
	ID           identity.RepoID
	CreatorAlias string
	Holders      []holder
	Branches     []gitstore.Ref // short names ("main"), sorted
	Tags         []gitstore.Ref
	bare         *gitstore.Bare // nil: no replica on this node
}

// openRepo parses the id from the URL and loads the repository.
func (s *Server) openRepo(ctx context.Context, raw string) (*repoView, error) {
	id, err := identity.ParseRepoID(raw)
	if err != nil {
		return nil, errNotFound("no repository %q: %v", clip(raw), err)
	}
	d, err := s.cfg.Backend.Repo(ctx, id)
	if err != nil {
		return nil, err
	}
	nodes, err := s.cfg.Backend.NodeList(ctx)
	if err != nil {
		return nil, err
	}
	aliases := aliasMap(nodes)
	v := &repoView{Repo: d, ID: id, CreatorAlias: aliases[d.Creator], Holders: holders(d.Holders, aliases)}
	for _, ref := range d.Refs {
		if b, ok := strings.CutPrefix(ref.Name, "refs/heads/"); ok {
			v.Branches = append(v.Branches, gitstore.Ref{Name: b, OID: ref.OID})
		} else if t, ok := strings.CutPrefix(ref.Name, "refs/tags/"); ok {
			v.Tags = append(v.Tags, gitstore.Ref{Name: t, OID: ref.OID})
		}
	}
	if len(v.Branches)+len(v.Tags) > 0 {
		if v.bare, err = s.cfg.Git.OpenBare(s.cfg.ReplicaDir(id)); err != nil {
			s.log.Debug("web view: the replica cannot be opened; showing the refs only", "repo", id, "err", err)
			v.bare = nil
		}
	}
	return v, nil
}

func (v *repoView) title() string { return v.Name }

// rev is a resolved ref: the name the URL used and its commit.
type rev struct {
	Name   string // branch or tag short name, or a commit id
	Commit string
}

// resolveRev reads the ref at the start of segs: a full commit id, or the
// longest run of components that names a branch (then a tag) of the
// creator's signed refs. It returns the rest of segs.
func (s *Server) resolveRev(ctx context.Context, v *repoView, segs []string) (rev, []string, error) {
	if v.bare == nil {
		return rev{}, nil, errNotFound("this node holds no replica of %s", v.ID)
	}
	if len(segs) == 0 {
		return rev{}, nil, errNotFound("no ref given")
	}
	if gitstore.CheckOID(segs[0]) == nil {
		c, err := v.bare.CommitOf(ctx, segs[0])
		if err != nil {
			return rev{}, nil, err
		}
		return rev{Name: segs[0], Commit: c}, segs[1:], nil
	}
	for i := len(segs); i >= 1; i-- {
		name := strings.Join(segs[:i], "/")
		for _, refs := range [][]gitstore.Ref{v.Branches, v.Tags} {
			if k := slices.IndexFunc(refs, func(r gitstore.Ref) bool { return r.Name == name }); k >= 0 {
				c, err := v.bare.CommitOf(ctx, refs[k].OID)
				if err != nil {
					return rev{}, nil, err
				}
				return rev{Name: name, Commit: c}, segs[i:], nil
			}
		}
	}
	return rev{}, nil, errNotFound("no branch or tag %q", clip(strings.Join(segs, "/")))
}

// node is what a path resolves to: a tree (with its entries) or a blob.
type node struct {
	Entry   gitstore.Entry // Type "tree" with an empty Name for the root
	Entries []gitstore.Entry
}

// resolvePath walks the trees of commit along segs, one git ls-tree per
// component, matching names exactly.
func resolvePath(ctx context.Context, bare *gitstore.Bare, commit string, segs []string) (node, error) {
	if len(segs) > MaxPathDepth {
		return node{}, errBadPath("too many components")
	}
	cur := node{Entry: gitstore.Entry{Type: "tree", OID: commit}}
	for i, seg := range segs {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\x00/") {
			return node{}, errBadPath("bad path component")
		}
		entries, err := bare.Tree(ctx, cur.Entry.OID)
		if err != nil {
			return node{}, err
		}
		k := slices.IndexFunc(entries, func(e gitstore.Entry) bool { return e.Name == seg })
		if k < 0 {
			return node{}, errNotFound("no %q in %s", clip(seg), clip(strings.Join(segs[:i], "/")+"/"))
		}
		cur = node{Entry: entries[k]}
		if cur.Entry.Type != "tree" && i < len(segs)-1 {
			return node{}, errNotFound("%s is not a directory", clip(strings.Join(segs[:i+1], "/")))
		}
	}
	if cur.Entry.Type == "tree" {
		entries, err := bare.Tree(ctx, cur.Entry.OID)
		if err != nil {
			return node{}, err
		}
		// Directories first, then files, each by name.
		slices.SortStableFunc(entries, func(a, b gitstore.Entry) int {
			if (a.Type == "tree") != (b.Type == "tree") {
				if a.Type == "tree" {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Name, b.Name)
		})
		cur.Entries = entries
	}
	return cur, nil
}

// splitRest splits a {rest...} path value into components. The guard has
// refused encoded slashes, so these are the URL's own components.
func splitRest(rest string) []string {
	if rest == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(rest, "/"), "/")
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
