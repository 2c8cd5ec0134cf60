package web

import (
	"html/template"
	"net/http"
)

// The patch pages: a repository's patches, and one patch with its
// revisions, reviews and comments.

type patchesPage struct {
	*repoView
	Patches []Patch
}

func (p patchesPage) title() string { return p.Name + " patches" }

// patches lists a repository's patches, open and draft ones first.
func (s *Server) patches(w http.ResponseWriter, r *http.Request) {
	v, err := s.openRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.cfg.Backend.Patches(r.Context(), v.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var live, done []Patch
	for _, p := range list {
		if p.State == "open" || p.State == "draft" {
			live = append(live, p)
		} else {
			done = append(done, p)
		}
	}
	s.render(w, r, http.StatusOK, "patches", patchesPage{repoView: v, Patches: append(live, done...)})
}

type patchPage struct {
	*repoView
	Patch       PatchThread
	Description template.HTML
	Comments    []renderedComment
}

func (p patchPage) title() string { return p.Patch.Title }

// patch shows one patch; its description and comments are rendered like
// READMEs, review remarks as plain text.
func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !isHexID(id) {
		s.fail(w, r, errNotFound("no patch %q", clip(id)))
		return
	}
	v, err := s.openRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	th, err := s.cfg.Backend.Patch(r.Context(), v.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := patchPage{repoView: v, Patch: th}
	if p.Description, p.Comments, err = s.pages.thread(th.Description, th.Thread); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "patch", p)
}
