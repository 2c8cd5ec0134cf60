package web_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/megaengine/megaengine/daemon"
	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/web"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// Hostile names and texts: each would run script if the view did not
// escape it.
const (
	hostileFile    = `<img src=x onerror=alert(1)>.txt`
	hostileSubject = `<script>alert("subject")</script> fix`
	hostileDesc    = `<b onmouseover=alert(1)>desc</b> & more`
	readme         = "# Hello *web*\n\nSome **bold** text.\n\n<script>alert('readme')</script>\n\n" +
		"<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3))\n"
)

// site is a running node with the web view and one shared repository.
type site struct {
	node   *daemon.Node
	base   string // http://host:port
	repo   string // did:repo:…
	issue  string // an issue's id
	patch  string // a patch's id
	head   string // the default branch's commit
	first  string // the root commit
	client *http.Client
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.invalid",
		"GIT_COMMITTER_NAME=Ada Author", "GIT_COMMITTER_EMAIL=ada@example.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// workRepo makes a working repository of two commits: a README, a
// directory, a file with a hostile name, and a hostile commit message.
func workRepo(t testing.TB) (dir, first, head string) {
	dir = t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	write(t, dir, "README.md", readme)
	write(t, dir, "src/main.go", "package main\n\nfunc main() {\n\tprintln(\"hi\")\n}\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "first commit")
	first = git(t, dir, "rev-parse", "HEAD")
	write(t, dir, hostileFile, "line one\nline <two>\n")
	write(t, dir, "src/main.go", "package main\n\nfunc main() {\n\tprintln(\"hello\")\n}\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", hostileSubject+"\n\nbody <i>text</i>")
	git(t, dir, "tag", "v1.0")
	return dir, first, git(t, dir, "rev-parse", "HEAD")
}

// startSite runs a node with --http on a free loopback port and shares a
// repository from it.
func startSite(t testing.TB) *site {
	root, err := os.MkdirTemp("", "mew")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := daemon.DefaultConfig(root)
	cfg.Listen, cfg.HTTP, cfg.Alias, cfg.TargetPeers = "127.0.0.1:0", "127.0.0.1:0", "webnode", 0
	n, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node stopped with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("node did not stop")
		}
	})
	dir, first, head := workRepo(t)
	info, err := n.RepoAdd(ctx, rpc.RepoAddParams{Path: dir, Name: "webrepo", Description: hostileDesc})
	if err != nil {
		t.Fatal(err)
	}
	opened, err := n.IssueOpen(ctx, rpc.IssueOpenParams{RepoID: info.RepoID, Title: hostileSubject, Body: readme})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.IssueComment(ctx, rpc.IssueCommentParams{RepoID: info.RepoID, ID: opened.Change, Body: "a **reply** <script>alert(4)</script>"}); err != nil {
		t.Fatal(err)
	}
	patch, err := n.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: info.RepoID, Title: "<i>patch</i> " + hostileSubject,
		Description: "Makes it *greet*.", Base: first, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.PatchReview(ctx, rpc.PatchReviewParams{RepoID: info.RepoID, ID: patch.Change, Verdict: "accept", Summary: "ok <b>fine</b>",
		Comments: []rpc.PatchInlineComment{{Path: "src/main.go", Start: 4, Body: "nice <script>x</script>"}}}); err != nil {
		t.Fatal(err)
	}
	s := &site{node: n, base: "http://" + n.WebAddr(), repo: info.RepoID, head: head, first: first, issue: opened.Change, patch: patch.Change,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	testutil.WaitFor(t, "the web view to answer", 10*time.Second, func() bool {
		resp, err := s.client.Get(s.base + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return s
}

// get fetches path (sent as written, not cleaned) and returns the status
// and body.
func (s *site) get(t testing.TB, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // exactly these bytes on the request line
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func (s *site) mustGet(t testing.TB, path string, want ...string) string {
	t.Helper()
	code, body, h := s.get(t, http.MethodGet, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200\n%s", path, code, body)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s: the page does not contain %q", path, w)
		}
	}
	noScript(t, path, body)
	return body
}

// noScript parses a page and fails if it holds anything a browser would
// run: a script element, an event handler attribute, a javascript: URL.
func noScript(t testing.TB, path, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "script" || n.Data == "iframe" || n.Data == "object" {
			t.Errorf("GET %s: the page has a <%s> element", path, n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") || strings.Contains(strings.ToLower(a.Val), "javascript:") {
				t.Errorf("GET %s: <%s %s=%q>", path, n.Data, a.Key, a.Val)
			}
		}
	}
}

func TestPages(t *testing.T) {
	s := startSite(t)
	r := "/repos/" + s.repo
	s.mustGet(t, "/", "webnode", s.node.ID().String(), "webrepo", "&lt;b onmouseover=alert(1)&gt;desc&lt;/b&gt; &amp; more", "Peers (0)")
	page := s.mustGet(t, r, "<h1>Hello <em>web</em></h1>", "<strong>bold</strong>", "raw HTML omitted",
		"main", "v1.0", "README.md", `href="/repos/`+s.repo+`/tree/main/src"`, "&lt;img src=x onerror=alert(1)&gt;.txt")
	if !strings.Contains(page, `href="/repos/`+s.repo+`/blob/main/%3Cimg%20src=x%20onerror=alert%281%29%3E.txt"`) {
		t.Errorf("repo page: no escaped link to the hostile file:\n%s", page)
	}
	s.mustGet(t, r+"/tree/main/src", "main.go")
	s.mustGet(t, r+"/tree/v1.0", "src/", "README.md")
	s.mustGet(t, r+"/blob/main/src/main.go", `id="L4"`, `href="#L4"`, "println(&#34;hello&#34;)")
	s.mustGet(t, r+"/blob/"+s.first+"/src/main.go", "println(&#34;hi&#34;)")
	s.mustGet(t, r+"/blob/main/%3Cimg%20src=x%20onerror=alert%281%29%3E.txt", "line &lt;two&gt;")
	s.mustGet(t, r+"/commits/main", s.head[:10], s.first[:10], "Ada Author", "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; fix", "first commit")
	s.mustGet(t, r+"/commit/"+s.head, "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; fix", "body &lt;i&gt;text&lt;/i&gt;",
		"Ada Author", `-	println(&#34;hi&#34;)`, `&#43;	println(&#34;hello&#34;)`, `class="add"`, s.first[:10])
	s.mustGet(t, r+"/commit/"+s.first, "a root commit", "&#43;# Hello *web*")
	s.mustGet(t, "/style.css", "table.code")
	s.mustGet(t, r+"/issues", "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; fix", `href="/repos/`+s.repo+`/issues/`+s.issue+`"`, "open")
	s.mustGet(t, r+"/issues/"+s.issue, "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; fix", "<h1>Hello <em>web</em></h1>",
		"a <strong>reply</strong>", "raw HTML omitted", "Comments (1)")
	s.mustGet(t, r+"/patches", "&lt;i&gt;patch&lt;/i&gt;", `href="/repos/`+s.repo+`/patches/`+s.patch+`"`, "<td>merged</td>") // main holds its head: merged
	s.mustGet(t, r+"/patches/"+s.patch, "&lt;i&gt;patch&lt;/i&gt;", "Makes it <em>greet</em>", "Revisions (1)", s.head[:7],
		"<strong>accept</strong>", "ok &lt;b&gt;fine&lt;/b&gt;", "src/main.go:4", "nice &lt;script&gt;x&lt;/script&gt;", "merged as")
	if code, _, h := s.get(t, http.MethodGet, r+"/tree/main/README.md"); code != http.StatusFound || !strings.HasSuffix(h.Get("Location"), "/blob/main/README.md") {
		t.Errorf("tree of a file: %d to %q, want a redirect to its blob page", code, h.Get("Location"))
	}
	if code, body, _ := s.get(t, http.MethodHead, r); code != http.StatusOK || body != "" {
		t.Errorf("HEAD %s: %d with %d bytes, want 200 and no body", r, code, len(body))
	}
}

func TestRefused(t *testing.T) {
	s := startSite(t)
	r := "/repos/" + s.repo
	unknown, err := identity.NewRepoID(make([]byte, 20), s.node.ID()) // well-formed, never shared
	if err != nil {
		t.Fatal(err)
	}
	other := unknown.String()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/repos/did:repo:zNotAnId", 404},
		{"GET", "/repos/" + other, 404},
		{"GET", "/nowhere", 404},
		{"GET", r + "/tree/nobranch", 404},
		{"GET", r + "/tree/main/nothing", 404},
		{"GET", r + "/blob/main/src/main.go/more", 404},
		{"GET", r + "/blob/main/src/nothing.go", 404},
		{"GET", r + "/commit/" + strings.Repeat("0", 40), 404},
		{"GET", r + "/commit/notanoid", 404},
		{"GET", r + "/commits/main?page=0", 400},
		{"GET", r + "/issues/" + strings.Repeat("f", 64), 404},
		{"GET", r + "/issues/not-hex", 404},
		{"GET", r + "/patches/" + strings.Repeat("e", 64), 404},
		{"GET", r + "/patches/not-hex", 404},
		{"GET", r + "/issues/ab", 404},
		{"GET", "/repos/" + other + "/issues", 404},
		{"GET", r + "/blob/main/../../../etc/passwd", 400},
		{"GET", r + "/blob/main/src/../README.md", 400},
		{"GET", r + "/blob/main/%2e%2e/%2e%2e/etc/passwd", 400},
		{"GET", r + "/blob/main/%2E%2E%2fREADME.md", 400},
		{"GET", r + "/blob/main/src%2fmain.go", 400},
		{"GET", r + "/blob/main//etc/passwd", 400},
		{"GET", r + "/blob/main/%2fetc%2fpasswd", 400},
		{"GET", r + "/blob/main/.", 400},
		{"GET", "/../../etc/passwd", 400},
		{"POST", r, 405},
		{"POST", "/", 405},
		{"PUT", "/", 405},
		{"DELETE", r, 405},
	} {
		code, body, h := s.get(t, tc.method, tc.path)
		if code != tc.want {
			t.Errorf("%s %s: %d, want %d\n%s", tc.method, tc.path, code, tc.want, body)
		}
		if strings.Contains(body, "root:") {
			t.Errorf("%s %s: the answer shows a file of the machine", tc.method, tc.path)
		}
		if tc.want == 405 && h.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, h.Get("Allow"))
		}
		noScript(t, tc.path, body)
	}
	// A name that is no loopback host reaches no page (DNS rebinding).
	req, _ := http.NewRequest(http.MethodGet, s.base+"/", nil)
	req.Host = "attacker.example:80"
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host attacker.example: %d, want 421", resp.StatusCode)
	}
}

// The view is off unless configured, and binds nothing then.
func TestOffByDefault(t *testing.T) {
	if cfg := daemon.DefaultConfig("/x"); cfg.HTTP != "" {
		t.Fatalf("default HTTP %q, want off", cfg.HTTP)
	}
	root, err := os.MkdirTemp("", "mew")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	// A port in use makes New fail and leaves nothing bound.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := daemon.DefaultConfig(root)
	cfg.Listen, cfg.HTTP = "127.0.0.1:0", ln.Addr().String()
	if n, err := daemon.New(cfg); err == nil {
		t.Fatalf("New with the web view on a port in use succeeded (%s)", n.WebAddr())
	}
	cfg.HTTP = ""
	n, err := daemon.New(cfg) // the root is free again: nothing was left open
	if err != nil {
		t.Fatal(err)
	}
	if n.WebAddr() != "" {
		t.Errorf("WebAddr %q without HTTP", n.WebAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Serve(ctx); err != nil {
		t.Fatal(err)
	}
}

// noBackend answers nothing: for tests that never reach a page.
type noBackend struct{}

func (noBackend) NodeInfo(context.Context) (web.NodeInfo, error)    { return web.NodeInfo{}, nil }
func (noBackend) NodePeers(context.Context) ([]web.Peer, error)     { return nil, nil }
func (noBackend) NodeList(context.Context) ([]web.KnownNode, error) { return nil, nil }
func (noBackend) Repos(context.Context) ([]web.Repo, error)         { return nil, nil }
func (noBackend) Repo(context.Context, identity.RepoID) (web.Repo, error) {
	return web.Repo{}, web.ErrNotFound
}
func (noBackend) Issues(context.Context, identity.RepoID) ([]web.Issue, error)  { return nil, nil }
func (noBackend) Patches(context.Context, identity.RepoID) ([]web.Patch, error) { return nil, nil }
func (noBackend) Patch(context.Context, identity.RepoID, string) (web.PatchThread, error) {
	return web.PatchThread{}, web.ErrNotFound
}
func (noBackend) Issue(context.Context, identity.RepoID, string) (web.IssueThread, error) {
	return web.IssueThread{}, web.ErrNotFound
}

// An address without a host binds to loopback quietly; any other address
// is allowed with a warning.
func TestBindWarning(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		loopback bool
	}{{":0", true}, {"127.0.0.1:0", true}, {"0.0.0.0:0", false}} {
		var logs strings.Builder
		s, err := web.New(web.Config{Addr: tc.addr, Backend: noBackend{}, Git: &gitstore.Runner{},
			ReplicaDir: func(identity.RepoID) string { return "/nonexistent" },
			Log:        slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		host, _, _ := net.SplitHostPort(s.Addr())
		if tc.loopback && host != "127.0.0.1" {
			t.Errorf("%s bound to %s, want 127.0.0.1", tc.addr, s.Addr())
		}
		if warned := strings.Contains(logs.String(), "level=WARN"); warned == tc.loopback {
			t.Errorf("%s: warning logged %v, want %v: %s", tc.addr, warned, !tc.loopback, logs.String())
		}
	}
}

// heardOf knows one repository by announcement only: no name, no refs.
type heardOf struct {
	noBackend
	id string
}

func (h heardOf) Repos(context.Context) ([]web.Repo, error) {
	return []web.Repo{{RepoID: h.id, Replica: "not-replicated"}}, nil
}

// A repository known only from gossip is listed by its id.
func TestIndexListsNamelessRepository(t *testing.T) {
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewRepoID(make([]byte, 20), key.ID())
	if err != nil {
		t.Fatal(err)
	}
	s, err := web.New(web.Config{Addr: "127.0.0.1:0", Backend: heardOf{id: id.String()}, Git: &gitstore.Runner{},
		ReplicaDir: func(identity.RepoID) string { return "/nonexistent" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), id.String()[:16]) || !strings.Contains(rec.Body.String(), "not-replicated") {
		t.Errorf("GET /: %d\n%s", rec.Code, rec.Body.String())
	}
}
