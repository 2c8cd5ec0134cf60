package web

import (
	"html/template"
	"net/http"
)

// The issue pages: a repository's issues, and one issue with its thread.

type issuesPage struct {
	*repoView
	Issues []Issue
}

func (p issuesPage) title() string { return p.Name + " issues" }

// issues lists a repository's issues, open ones first.
func (s *Server) issues(w http.ResponseWriter, r *http.Request) {
	v, err := s.openRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.cfg.Backend.Issues(r.Context(), v.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var open, closed []Issue
	for _, is := range list {
		if is.State == "closed" {
			closed = append(closed, is)
		} else {
			open = append(open, is)
		}
	}
	s.render(w, r, http.StatusOK, "issues", issuesPage{repoView: v, Issues: append(open, closed...)})
}

type issuePage struct {
	*repoView
	Issue    IssueThread
	Body     template.HTML
	Comments []renderedComment
}

func (p issuePage) title() string { return p.Issue.Title }

type renderedComment struct {
	Comment
	HTML template.HTML
}

// issue shows one issue; its body and comments are rendered like READMEs.
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !isHexID(id) {
		s.fail(w, r, errNotFound("no issue %q", clip(id)))
		return
	}
	v, err := s.openRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	th, err := s.cfg.Backend.Issue(r.Context(), v.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := issuePage{repoView: v, Issue: th}
	if p.Body, p.Comments, err = s.pages.thread(th.Body, th.Thread); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "issue", p)
}

// thread renders an opening text and its comments as markdown.
func (p *pages) thread(body string, comments []Comment) (template.HTML, []renderedComment, error) {
	top, err := p.markdown([]byte(body))
	if err != nil {
		return "", nil, err
	}
	out := make([]renderedComment, 0, len(comments))
	for _, c := range comments {
		html, err := p.markdown([]byte(c.Body))
		if err != nil {
			return "", nil, err
		}
		out = append(out, renderedComment{Comment: c, HTML: html})
	}
	return top, out, nil
}

// isHexID accepts an issue id or prefix: 4 to 64 lowercase hex digits.
func isHexID(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
