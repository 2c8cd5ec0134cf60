package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
)

// The node's page and the repository list.

type indexPage struct {
	Node  NodeInfo
	Peers []Peer
	Nodes []KnownNode
	Repos []repoRow
}

func (indexPage) title() string { return "MegaEngine node" }

// repoRow is one line of the repository list.
type repoRow struct {
	Repo
	CreatorAlias string
	Holders      []holder
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
	repos, err := b.Repos(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, repo := range repos {
		p.Repos = append(p.Repos, repoRow{Repo: repo, CreatorAlias: aliases[repo.Creator], Holders: holders(repo.Holders, aliases)})
	}
	slices.SortFunc(p.Repos, func(a, b repoRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.RepoID, b.RepoID)) })
	s.render(w, r, http.StatusOK, "index", p)
}

// aliasMap maps node ids to the aliases they announced.
func aliasMap(nodes []KnownNode) map[string]string {
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
