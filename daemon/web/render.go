package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"index", "repo", "tree", "blob", "log", "commit", "issues", "issue", "patches", "patch", "error"}

// pages holds the parsed templates and the Markdown renderer.
type pages struct {
	byName map[string]*template.Template
	md     goldmark.Markdown
	css    []byte
}

var funcs = template.FuncMap{
	"when":     when,
	"short":    shortOID,
	"shortDID": shortDID,
	"join":     joinURL,
	"inc":      func(i int) int { return i + 1 },
	"dec":      func(i int) int { return i - 1 },
}

func newPages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
		p.byName[name] = t
	}
	if p.css, err = files.ReadFile("templates/style.css"); err != nil {
		return nil, err
	}
	// goldmark's HTML renderer without html.WithUnsafe drops raw HTML
	// (it writes "<!-- raw HTML omitted -->") and empties links with
	// dangerous schemes (javascript:, vbscript:, file:, data: other than
	// images): what it returns is safe to embed as template.HTML.
	p.md = goldmark.New(goldmark.WithExtensions(extension.GFM))
	return p, nil
}

// markdown renders a README.
func (p *pages) markdown(src []byte) (template.HTML, error) {
	var buf bytes.Buffer
	if err := p.md.Convert(src, &buf); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

// page is what every template gets: the page's title and its own data.
type page struct {
	Title string
	Data  any
}

// render executes the named page into a buffer first, so a template error
// becomes a 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	title := name
	if t, ok := data.(interface{ title() string }); ok {
		title = t.title()
	}
	if err := s.pages.byName[name].ExecuteTemplate(&buf, "layout.html", page{Title: title, Data: data}); err != nil {
		s.log.Error("web view template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(s.pages.css)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func shortOID(oid string) string {
	if len(oid) > 10 {
		return oid[:10]
	}
	return oid
}

// shortDID shortens "did:key:z6MkhaXg…" to its start and end.
func shortDID(did string) string {
	if len(did) <= 24 {
		return did
	}
	return did[:16] + "…" + did[len(did)-6:]
}

// joinURL builds a path from components, escaping each (a file name may
// hold "?", "#" or "%"); a component with slashes (a ref name, a path) is
// escaped part by part.
func joinURL(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" {
				continue
			}
			b.WriteByte('/')
			b.WriteString(url.PathEscape(seg))
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
