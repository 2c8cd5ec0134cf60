package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Scheme is the URL scheme git hands to this helper.
const Scheme = "mega://"

// The optional prefixes of the ids in a URL.
const (
	didRepo = "did:repo:"
	didKey  = "did:key:"
)

// urlGrammar is what a mega:// URL looks like, for error messages.
const urlGrammar = "mega://<repo-id>[/<node-did>]"

// maxURLLen bounds the URL the helper parses (two ids and a separator fit
// many times over).
const maxURLLen = 512

// target is what a mega:// URL names: a repository and, optionally, the
// node whose namespace to use (zero: the canonical namespace).
type target struct {
	Repo identity.RepoID
	Node identity.NodeID
	// HasNode reports whether the URL named a node.
	HasNode bool
}

// parseURL parses mega://<repo-id>[/<node-did>]. The "did:repo:" and
// "did:key:" prefixes are optional; one trailing slash is allowed. The
// scheme may be missing: git passes only the address for the
// "mega::<address>" form.
func parseURL(raw string) (target, error) {
	var t target
	if len(raw) > maxURLLen {
		return t, fmt.Errorf("invalid URL: longer than %d bytes; want %s", maxURLLen, urlGrammar)
	}
	rest, ok := strings.CutPrefix(raw, Scheme)
	if !ok && strings.Contains(raw, "://") {
		return t, fmt.Errorf("invalid URL %q: want %s", raw, urlGrammar)
	}
	rest = strings.TrimSuffix(rest, "/")
	repoPart, nodePart, hasNode := strings.Cut(rest, "/")
	if repoPart == "" {
		return t, fmt.Errorf("invalid URL %q: no repository id; want %s", raw, urlGrammar)
	}
	repo, err := identity.ParseRepoID(repoPart)
	if err != nil {
		return t, fmt.Errorf("invalid URL %q: %q is not a repository id (did:repo:z… or z…); want %s", raw, repoPart, urlGrammar)
	}
	t.Repo = repo
	if !hasNode {
		return t, nil
	}
	if nodePart == "" || strings.Contains(nodePart, "/") {
		return t, fmt.Errorf("invalid URL %q: want %s", raw, urlGrammar)
	}
	did := nodePart
	if !strings.HasPrefix(did, didKey) {
		did = didKey + did
	}
	node, err := identity.ParseNodeID(did)
	if err != nil {
		return t, fmt.Errorf("invalid URL %q: %q is not a node id (did:key:z6Mk… or z6Mk…); want %s", raw, nodePart, urlGrammar)
	}
	t.Node, t.HasNode = node, true
	return t, nil
}

// String is the URL in its short form, mega://<z…>[/<z6Mk…>].
func (t target) String() string {
	s := Scheme + strings.TrimPrefix(t.Repo.String(), didRepo)
	if t.HasNode {
		s += "/" + strings.TrimPrefix(t.Node.String(), didKey)
	}
	return s
}

var errUsage = errors.New("usage: git-remote-mega <remote> [<url>]; git runs it for " + urlGrammar + " URLs (git clone mega://…)")
