package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/megaengine/megaengine/rpc"
)

// The node's page and the repository list.

type indexPage struct {
	Node  rpc.NodeInfo
	Peers []rpc.Peer
	Nodes []rpc.NodeEntry
	Repos []repoRow
}

func (indexPage) title() string { return "MegaEngine node" }

// repoRow is one line of the repository list.
type repoRow struct {
	rpc.RepoInfo
	CreatorAlias string
	Holders      []holder
	Updated      time.Time // the creator's latest signed refs
}

type holder struct {
	DID, Alias string
}

// index shows the node and its repositories.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b := s.cfg.Backend
	var p indexPage
	var err error
	if p.Node, err = b.NodeInfo(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Peers, err = b.NodePeers(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Nodes, err = b.NodeList(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	aliases := aliasMap(p.Nodes)
	repos, err := b.RepoList(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, info := range repos {
		row := repoRow{RepoInfo: info, CreatorAlias: aliases[info.Creator], Holders: holders(info.Holders, aliases)}
		if d, err := b.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID}); err == nil {
			if ns := canonical(d); ns != nil {
				row.Updated = time.UnixMilli(int64(ns.Seq))
			}
		}
		p.Repos = append(p.Repos, row)
	}
	slices.SortFunc(p.Repos, func(a, b repoRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.RepoID, b.RepoID)) })
	s.render(w, r, http.StatusOK, "index", p)
}

// aliasMap maps node ids to the aliases they announced.
func aliasMap(nodes []rpc.NodeEntry) map[string]string {
	m := make(map[string]string, len(nodes))
	for _, n := range nodes {
		m[n.DID] = n.Alias
	}
	return m
}

func holders(dids []string, aliases map[string]string) []holder {
	out := make([]holder, len(dids))
	for i, d := range dids {
		out[i] = holder{DID: d, Alias: aliases[d]}
	}
	return out
}

// canonical is the creator's namespace of d: what clones follow and what
// the view shows; nil when no signed refs of it reached this node.
func canonical(d rpc.RepoDetail) *rpc.NamespaceRefs {
	for i := range d.Namespaces {
		if d.Namespaces[i].Node == d.Creator {
			return &d.Namespaces[i]
		}
	}
	return nil
}

// pageNumber reads ?page=N (default 1), 1..MaxLogPage.
func pageNumber(r *http.Request) (int, error) {
	v := r.URL.Query().Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLogPage {
		return 0, &httpError{http.StatusBadRequest, "page: want a number from 1 to " + strconv.Itoa(MaxLogPage)}
	}
	return n, nil
}
