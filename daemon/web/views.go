package web

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/megaengine/megaengine/daemon/gitstore"
)

// The repository pages: overview, tree, file, history, commit.

type repoPage struct {
	*repoView
	Head    rev
	Root    node
	Readme  template.HTML
	Plain   string // a README that is not Markdown
	ReadmeF string // its file name
	Note    string // why the tree is not shown
}

// repo shows a repository: what the node knows of it, its branches and
// tags, the root of its default branch and its README.
func (s *Server) repo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := s.openRepo(ctx, r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := repoPage{repoView: v}
	if v.bare != nil && v.DefaultBranch != "" {
		// A replica without the default branch's objects (still syncing)
		// still has a page: it says what is missing.
		if err := s.repoRoot(r, &p); err != nil {
			if statusOf(err) == http.StatusInternalServerError {
				s.fail(w, r, err)
				return
			}
			p.Head, p.Note = rev{}, err.Error()
		}
	}
	s.render(w, r, http.StatusOK, "repo", p)
}

// repoRoot reads the default branch's root tree and README.
func (s *Server) repoRoot(r *http.Request, p *repoPage) error {
	var err error
	if p.Head, _, err = s.resolveRev(r.Context(), p.repoView, []string{p.DefaultBranch}); err != nil {
		return err
	}
	if p.Root, err = resolvePath(r.Context(), p.bare, p.Head.Commit, nil); err != nil {
		return err
	}
	return s.readme(r, p)
}

// readme finds the README at the root (README.md, README.markdown or
// README, in any case) and renders it.
func (s *Server) readme(r *http.Request, p *repoPage) error {
	for _, want := range []string{"readme.md", "readme.markdown", "readme"} {
		for _, e := range p.Root.Entries {
			if e.Type != "blob" || strings.ToLower(e.Name) != want {
				continue
			}
			data, _, err := p.bare.Blob(r.Context(), e.OID, MaxReadme)
			if err != nil {
				return err
			}
			p.ReadmeF = e.Name
			if want == "readme" {
				p.Plain = strings.ToValidUTF8(string(data), "\uFFFD")
				return nil
			}
			p.Readme, err = s.pages.markdown(data)
			return err
		}
	}
	return nil
}

// pathPage is a tree or a file at a ref.
type pathPage struct {
	*repoView
	Rev    rev
	Path   string   // "" for the root
	Crumbs []crumb  // the path's components, each linking to its tree
	Node   node     // the tree or the blob
	Lines  []string // a text file's lines
	Binary bool
	Large  bool // more than MaxBlobView bytes or MaxBlobLines lines: cut
}

func (p pathPage) title() string { return p.Name + "/" + p.Path }

type crumb struct {
	Name, Path string
}

func crumbs(segs []string) []crumb {
	out := make([]crumb, len(segs))
	for i, s := range segs {
		out[i] = crumb{Name: s, Path: strings.Join(segs[:i+1], "/")}
	}
	return out
}

// at resolves the repository, ref and path of a tree or blob URL.
func (s *Server) at(r *http.Request) (pathPage, error) {
	ctx := r.Context()
	v, err := s.openRepo(ctx, r.PathValue("repo"))
	if err != nil {
		return pathPage{}, err
	}
	rv, segs, err := s.resolveRev(ctx, v, splitRest(r.PathValue("rest")))
	if err != nil {
		return pathPage{}, err
	}
	n, err := resolvePath(ctx, v.bare, rv.Commit, segs)
	if err != nil {
		return pathPage{}, err
	}
	return pathPage{repoView: v, Rev: rv, Path: strings.Join(segs, "/"), Crumbs: crumbs(segs), Node: n}, nil
}

// tree shows a directory at a ref.
func (s *Server) tree(w http.ResponseWriter, r *http.Request) {
	p, err := s.at(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Node.Entry.Type != "tree" {
		http.Redirect(w, r, joinURL("repos", p.ID.String(), "blob", p.Rev.Name, p.Path), http.StatusFound)
		return
	}
	s.render(w, r, http.StatusOK, "tree", p)
}

// blob shows a file at a ref with line numbers.
func (s *Server) blob(w http.ResponseWriter, r *http.Request) {
	p, err := s.at(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch p.Node.Entry.Type {
	case "tree":
		http.Redirect(w, r, joinURL("repos", p.ID.String(), "tree", p.Rev.Name, p.Path), http.StatusFound)
		return
	case "commit":
		s.fail(w, r, errNotFound("%s is a submodule", clip(p.Path)))
		return
	}
	data, cut, err := p.bare.Blob(r.Context(), p.Node.Entry.OID, MaxBlobView)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Large = cut
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
		p.Binary = true
	} else {
		p.Lines = lines(data)
		if len(p.Lines) > MaxBlobLines {
			p.Lines, p.Large = p.Lines[:MaxBlobLines], true
		}
	}
	s.render(w, r, http.StatusOK, "blob", p)
}

// lines splits text into lines (without their newlines), replacing
// invalid UTF-8.
func lines(data []byte) []string {
	text := string(data)
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

type logPage struct {
	*repoView
	Rev     rev
	Commits []gitstore.CommitInfo
	Page    int
	Next    int // 0: no further page
}

// history shows a page of a ref's history.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	page, err := pageNumber(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.openRepo(ctx, r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rv, rest, err := s.resolveRev(ctx, v, splitRest(r.PathValue("rest")))
	if err == nil && len(rest) > 0 {
		err = errNotFound("no branch or tag %q", clip(r.PathValue("rest")))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	commits, err := v.bare.Log(ctx, rv.Commit, (page-1)*LogPageSize, LogPageSize+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := logPage{repoView: v, Rev: rv, Commits: commits, Page: page}
	if len(commits) > LogPageSize {
		p.Commits, p.Next = commits[:LogPageSize], page+1
	}
	s.render(w, r, http.StatusOK, "log", p)
}

type commitPage struct {
	*repoView
	Commit gitstore.CommitInfo
	Body   string // the message after its subject line
	Diff   []diffLine
	Cut    bool
}

func (p commitPage) title() string { return p.Commit.Subject() }

// diffLine is one line of a patch and how to show it.
type errorPage struct {
	Status        int
	Text, Message string
}

func (e errorPage) title() string { return e.Text }

type diffLine struct {
	Class string // "add", "del", "hunk", "file" or ""
	Text  string
}

// commit shows a commit and its diff against its first parent.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := s.openRepo(ctx, r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	oid := r.PathValue("oid")
	if gitstore.CheckOID(oid) != nil || v.bare == nil {
		s.fail(w, r, errNotFound("no commit %q", clip(oid)))
		return
	}
	commits, err := v.bare.Commits(ctx, []string{oid})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := commits[0]
	parent := ""
	if len(c.Parents) > 0 {
		parent = c.Parents[0]
	}
	patch, cut, err := v.bare.Diff(ctx, parent, c.OID, MaxDiff)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, body, _ := strings.Cut(c.Message, "\n")
	s.render(w, r, http.StatusOK, "commit", commitPage{repoView: v, Commit: c, Body: strings.TrimSpace(body), Diff: diffLines(patch), Cut: cut})
}

// diffLines classifies the lines of a patch.
func diffLines(patch []byte) []diffLine {
	var out []diffLine
	inHeader := false
	for _, l := range lines(patch) {
		d := diffLine{Text: l}
		switch {
		case strings.HasPrefix(l, "diff --git "):
			d.Class, inHeader = "file", true
		case strings.HasPrefix(l, "@@"):
			d.Class, inHeader = "hunk", false
		case inHeader:
			d.Class = "meta"
		case strings.HasPrefix(l, "+"):
			d.Class = "add"
		case strings.HasPrefix(l, "-"):
			d.Class = "del"
		}
		out = append(out, d)
	}
	return out
}
