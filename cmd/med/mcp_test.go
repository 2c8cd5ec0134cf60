package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/megaengine/megaengine/protocol/identity"
)

// sharedRepo starts med on a fresh root (extra flags appended) and shares
// a one-commit repository from it; it returns the root, the process and
// the repository id.
func sharedRepo(t *testing.T, extra ...string) (string, *proc, string) {
	t.Helper()
	root := tempRoot(t)
	p := startNode1(t, root, "mcpnode", extra...)
	waitInfo(t, root)
	src := t.TempDir()
	gitIn(t, src, "init", "-q", "-b", "main")
	gitIn(t, src, "commit", "-q", "--allow-empty", "-m", "first")
	var added struct {
		RepoID string `json:"repo_id"`
	}
	if err := mecliJSON(t, &added, "--root", root, "repo", "add", "--path", src, "--description", "shared for tools"); err != nil {
		t.Fatal(err)
	}
	return root, p, added.RepoID
}

// mecli mcp is an MCP server on stdio: a client of the official SDK
// initializes it, lists its tools with their schemas and annotations, and
// calls them against a real daemon; the daemon's errors are tool errors.
func TestMCPServer(t *testing.T) {
	needBinaries(t)
	root, _, repo := sharedRepo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(mecliBin, "--root", root, "mcp")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if init := cs.InitializeResult(); init == nil || init.ServerInfo.Name != "megaengine" {
		t.Fatalf("initialize: %+v", init)
	}

	checkTools(t, ctx, cs)

	list := callTool(t, ctx, cs, "repo_list", map[string]any{}, false)
	if !strings.Contains(list, repo) || !strings.Contains(list, "shared for tools") {
		t.Errorf("repo_list does not show %s: %s", repo, list)
	}
	show := callTool(t, ctx, cs, "repo_show", map[string]any{"repo_id": repo}, false)
	if !strings.Contains(show, `"namespaces"`) || !strings.Contains(show, "refs/heads/main") {
		t.Errorf("repo_show %s lacks its signed refs: %s", repo, show)
	}
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	unknownID, err := identity.NewRepoID(make([]byte, 20), key.ID()) // well-formed, never shared
	if err != nil {
		t.Fatal(err)
	}
	unknown := unknownID.String()
	if msg := callTool(t, ctx, cs, "repo_show", map[string]any{"repo_id": unknown}, true); !strings.Contains(msg, "unknown repository") {
		t.Errorf("repo_show of an unknown repository says %q, not the daemon's message", msg)
	}
	if msg := callTool(t, ctx, cs, "repo_show", map[string]any{"repo_id": "nonsense"}, true); !strings.Contains(msg, "invalid repository id") {
		t.Errorf("repo_show of nonsense says %q", msg)
	}
	if msg := callTool(t, ctx, cs, "repo_clone", map[string]any{"repo_id": repo, "path": "relative/dir"}, true); !strings.Contains(msg, "absolute") {
		t.Errorf("repo_clone to a relative path says %q", msg)
	}
	dest := t.TempDir() + "/copy"
	if out := callTool(t, ctx, cs, "repo_clone", map[string]any{"repo_id": repo, "path": dest}, false); !strings.Contains(out, `"branch":"main"`) {
		t.Errorf("repo_clone: %s", out)
	}
	if head := gitIn(t, dest, "log", "-1", "--format=%s"); head != "first" {
		t.Errorf("the clone's head is %q", head)
	}
	issueTools(t, ctx, cs, repo)
}

// issueTools opens an issue, comments on it, and lists and shows it
// through the issue tools; an unknown issue is a tool error.
func issueTools(t *testing.T, ctx context.Context, cs *mcp.ClientSession, repo string) {
	t.Helper()
	var opened struct {
		Change string `json:"change"`
	}
	out := callTool(t, ctx, cs, "issue_open", map[string]any{"repo_id": repo, "title": "Tool-made issue", "body": "opened over MCP"}, false)
	if err := json.Unmarshal([]byte(out), &opened); err != nil || opened.Change == "" {
		t.Fatalf("issue_open: %s (%v)", out, err)
	}
	callTool(t, ctx, cs, "issue_comment", map[string]any{"repo_id": repo, "id": opened.Change, "body": "a comment over MCP"}, false)
	if list := callTool(t, ctx, cs, "patch_list", map[string]any{"repo_id": repo, "state": "all"}, false); !strings.Contains(list, `"patches":[]`) {
		t.Errorf("patch_list of a repository without patches: %s", list)
	}
	callTool(t, ctx, cs, "patch_show", map[string]any{"repo_id": repo, "id": "00000000"}, true)
	if list := callTool(t, ctx, cs, "issue_list", map[string]any{"repo_id": repo}, false); !strings.Contains(list, "Tool-made issue") || !strings.Contains(list, `"comment_count":1`) {
		t.Errorf("issue_list: %s", list)
	}
	if show := callTool(t, ctx, cs, "issue_show", map[string]any{"repo_id": repo, "id": opened.Change}, false); !strings.Contains(show, "opened over MCP") || !strings.Contains(show, "a comment over MCP") {
		t.Errorf("issue_show: %s", show)
	}
	callTool(t, ctx, cs, "issue_show", map[string]any{"repo_id": repo, "id": strings.Repeat("e", 64)}, true)
}

// checkTools lists the server's tools and checks each one's input schema
// and read-only annotation.
func checkTools(t *testing.T, ctx context.Context, cs *mcp.ClientSession) {
	t.Helper()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*mcp.Tool{}
	for _, tool := range tools.Tools {
		byName[tool.Name] = tool
	}
	for _, tc := range []struct {
		name     string
		readOnly bool
		required []string // sorted
	}{
		{"repo_list", true, nil},
		{"repo_show", true, []string{"repo_id"}},
		{"repo_sync", false, []string{"repo_id"}},
		{"repo_clone", false, []string{"path", "repo_id"}},
		{"issue_list", true, []string{"repo_id"}},
		{"issue_show", true, []string{"id", "repo_id"}},
		{"issue_open", false, []string{"repo_id", "title"}},
		{"issue_comment", false, []string{"body", "id", "repo_id"}},
		{"patch_list", true, []string{"repo_id"}},
		{"patch_show", true, []string{"id", "repo_id"}},
	} {
		tool := byName[tc.name]
		if tool == nil {
			t.Errorf("no tool %s among %v", tc.name, tools.Tools)
			continue
		}
		if tool.Annotations == nil || tool.Annotations.ReadOnlyHint != tc.readOnly {
			t.Errorf("%s: annotations %+v, want readOnlyHint %v", tc.name, tool.Annotations, tc.readOnly)
		}
		schema, _ := json.Marshal(tool.InputSchema)
		var s struct {
			Type     string   `json:"type"`
			Required []string `json:"required"`
		}
		json.Unmarshal(schema, &s)
		slices.Sort(s.Required)
		if s.Type != "object" || !slices.Equal(s.Required, tc.required) {
			t.Errorf("%s: input schema %s, want an object requiring %v", tc.name, schema, tc.required)
		}
	}
}

// callTool calls a tool and returns its text content; wantErr says
// whether the result must be a tool error.
func callTool(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any, wantErr bool) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error %v", name, args, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if res.IsError != wantErr {
		t.Errorf("%s %v: isError %v, want %v: %s", name, args, res.IsError, wantErr, text.String())
	}
	return text.String()
}

// med --http serves the web view and prints its address.
func TestWebFlag(t *testing.T) {
	needBinaries(t)
	_, p, repo := sharedRepo(t, "--http", "127.0.0.1:0")
	url := p.stdoutField(t, "web")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("med prints web %q", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), repo) || !strings.Contains(string(body), "mcpnode") {
		t.Errorf("GET %s: %d\n%s", url, resp.StatusCode, body)
	}
}
