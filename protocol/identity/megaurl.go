package identity

import (
	"errors"
	"fmt"
	"strings"
)

// MegaScheme starts every mega:// URL.
const MegaScheme = "mega://"

// MaxMegaURLLen bounds a mega:// URL before it is parsed (two ids and a
// separator fit many times over).
const MaxMegaURLLen = 512

// ErrMalformedURL is wrapped by every error of ParseMegaURL, whose message
// starts with it ("invalid URL …") and says what is wrong.
var ErrMalformedURL = errors.New("invalid URL")

// megaURLGrammar is what a mega:// URL looks like, for error messages.
const megaURLGrammar = "mega://<repo-id>[/<node-did>]"

// The prefixes String leaves out.
const (
	repoDIDPrefix = "did:repo:"
	keyDIDPrefix  = "did:key:"
)

// MegaURL is a mega:// URL (spec/remote-helper.md §1): a repository and,
// optionally, the node whose namespace of it to use.
//
//	mega://<repo-id>             the canonical namespace (the creator's)
//	mega://<repo-id>/<node-did>  that node's namespace, e.g. a fork
//
// A zero Node means the canonical namespace: MegaURL{Repo: repo} is the URL
// of the repository, MegaURL{Repo: repo, Node: node} that of node's
// namespace of it. (A zero NodeID is never a valid id, so nothing is lost.)
// The zero MegaURL is not a valid URL.
type MegaURL struct {
	Repo RepoID
	Node NodeID
}

// HasNode reports whether the URL names a node's namespace rather than the
// canonical one.
func (u MegaURL) HasNode() bool { return !u.Node.IsZero() }

// String returns the URL in its short form, without the did prefixes:
// "mega://z…" or "mega://z…/z6Mk…" (the node in the W3C did:key form, even
// if it was parsed from the legacy one). ParseMegaURL gives u back.
func (u MegaURL) String() string {
	s := MegaScheme + strings.TrimPrefix(u.Repo.String(), repoDIDPrefix)
	if u.HasNode() {
		s += "/" + strings.TrimPrefix(u.Node.String(), keyDIDPrefix)
	}
	return s
}

// ParseMegaURL parses mega://<repo-id>[/<node-did>]. The "did:repo:" and
// "did:key:" prefixes are optional, the node id may be in the legacy did:key
// form, and one trailing slash is allowed. The scheme may be left out, as
// git does when it runs the helper for a "mega::<address>" remote. Anything
// else — another scheme, an empty or malformed id, more path elements, a
// query, a URL over MaxMegaURLLen bytes — is an error wrapping
// ErrMalformedURL, one line that quotes the URL.
func ParseMegaURL(s string) (MegaURL, error) {
	var u MegaURL
	if len(s) > MaxMegaURLLen {
		return u, fmt.Errorf("%w: longer than %d bytes; want %s", ErrMalformedURL, MaxMegaURLLen, megaURLGrammar)
	}
	bad := func(why string, a ...any) error {
		if why == "" {
			return fmt.Errorf("%w %q: want %s", ErrMalformedURL, s, megaURLGrammar)
		}
		return fmt.Errorf("%w %q: %s; want %s", ErrMalformedURL, s, fmt.Sprintf(why, a...), megaURLGrammar)
	}
	rest, ok := strings.CutPrefix(s, MegaScheme)
	if !ok && strings.Contains(s, "://") {
		return u, bad("")
	}
	rest = strings.TrimSuffix(rest, "/")
	repoPart, nodePart, hasNode := strings.Cut(rest, "/")
	if repoPart == "" {
		return u, bad("no repository id")
	}
	repo, err := ParseRepoID(repoPart)
	if err != nil {
		return u, bad("%q is not a repository id (did:repo:z… or z…)", repoPart)
	}
	u.Repo = repo
	if !hasNode {
		return u, nil
	}
	if nodePart == "" || strings.Contains(nodePart, "/") {
		return MegaURL{}, bad("")
	}
	did := nodePart
	if !strings.HasPrefix(did, keyDIDPrefix) {
		did = keyDIDPrefix + did
	}
	node, err := ParseNodeID(did)
	if err != nil {
		return MegaURL{}, bad("%q is not a node id (did:key:z6Mk… or z6Mk…)", nodePart)
	}
	u.Node = node
	return u, nil
}
