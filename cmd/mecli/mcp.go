package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/rpc"
)

// mecli mcp: a Model Context Protocol server on stdio, so that editors and
// other programs that speak MCP can use the node. Each tool is one RPC method,
// called over the control socket like every other command (the daemon is
// dialled per call, so the server outlives a daemon restart). The daemon's
// errors become tool errors (isError) carrying its message.
//
// The issue tools are in mcp_issue.go; patch_list and patch_show follow
// once the daemon has patch.* methods.

func init() {
	register(&command{
		path:  "mcp",
		short: "serve MCP on stdin/stdout; its tools call the daemon when a client uses them",
		long: `Serve the Model Context Protocol on stdin and stdout (newline-delimited
JSON-RPC), for tools that speak MCP. The tools call the running daemon:
repo_list, repo_show, issue_list and issue_show (read-only), repo_sync,
repo_clone, issue_open and issue_comment. Configure it
in an MCP client as the command "mecli" with the argument "mcp" (add
"--root DIR" for a node that is not the default one).`,
		run: runMCP,
	})
}

func runMCP(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
	in := e.stdin
	if in == nil {
		in = os.Stdin
	}
	s := newMCPServer(e.root)
	err := s.Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{e.stdout}})
	if err != nil && (ctx.Err() != nil || errors.Is(err, io.EOF)) {
		return nil // the client closed stdin, or Ctrl-C
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// Tool inputs. Field tags give the JSON names and the schema's
// descriptions; fields without omitempty are required.
type (
	repoIDInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z… (or z… alone) or its mega:// URL"`
	}
	repoCloneInput struct {
		RepoID string `json:"repo_id" jsonschema:"the repository: did:repo:z…, or a mega:// URL (mega://REPO/NODE clones that node's namespace)"`
		Path   string `json:"path" jsonschema:"absolute path of the working copy to create; it must not exist or be an empty directory"`
	}
	repoListOutput struct {
		Repositories []rpc.RepoInfo `json:"repositories"`
	}
)

// newMCPServer makes the server and its tools for the node rooted at root.
func newMCPServer(root string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "megaengine", Title: "MegaEngine node", Version: rpc.Version}, &mcp.ServerOptions{
		Instructions: "Tools for the repositories of a MegaEngine node (peer-to-peer git). Repositories are named by did:repo ids; repo_list shows them.",
	})
	no := false
	yes := true
	mcp.AddTool(s, &mcp.Tool{
		Name:        "repo_list",
		Description: "List every repository the node knows of (shared here, replicated, or only announced by others), with its name, description, creator, holders and the state of its replica.",
		Annotations: &mcp.ToolAnnotations{Title: "List repositories", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, repoListOutput, error) {
		repos, err := dialDo(ctx, root, func(c *rpc.Client) ([]rpc.RepoInfo, error) { return c.RepoList(ctx) })
		return nil, repoListOutput{Repositories: repos}, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "repo_show",
		Description: "Show one repository: what repo_list shows, and the signed refs (branches and tags with their commits) of every node's namespace the replica holds.",
		Annotations: &mcp.ToolAnnotations{Title: "Show a repository", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in repoIDInput) (*mcp.CallToolResult, rpc.RepoDetail, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.RepoDetail{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.RepoDetail, error) { return c.RepoShow(ctx, id) })
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "repo_sync",
		Description: "Fetch a repository's newest signed refs and objects from the network into the node's replica now.",
		Annotations: &mcp.ToolAnnotations{Title: "Sync a repository", DestructiveHint: &no, IdempotentHint: true, OpenWorldHint: &yes},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in repoIDInput) (*mcp.CallToolResult, rpc.SyncResult, error) {
		id, err := parseRepoID(in.RepoID)
		if err != nil {
			return nil, rpc.SyncResult{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.SyncResult, error) { return c.RepoSync(ctx, id, nil) })
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "repo_clone",
		Description: "Make a git working copy of a repository at an absolute path, from the node's replica (replicating it first if needed); its origin is the repository's mega:// URL.",
		Annotations: &mcp.ToolAnnotations{Title: "Clone a repository", DestructiveHint: &no, OpenWorldHint: &yes},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in repoCloneInput) (*mcp.CallToolResult, rpc.CloneResult, error) {
		p, err := cloneParams(in)
		if err != nil {
			return nil, rpc.CloneResult{}, err
		}
		return mcpCall(ctx, root, func(c *rpc.Client) (rpc.CloneResult, error) { return c.RepoClone(ctx, p, nil) })
	})
	addIssueTools(s, root)
	addPatchTools(s, root)
	return s
}

// cloneParams checks repo_clone's input: a repository (or namespace URL)
// and an absolute path, since the server's working directory means
// nothing to its client.
func cloneParams(in repoCloneInput) (rpc.RepoCloneParams, error) {
	u, err := parseRepoArg(in.RepoID)
	if err != nil {
		return rpc.RepoCloneParams{}, err
	}
	if !filepath.IsAbs(in.Path) {
		return rpc.RepoCloneParams{}, errors.New("path must be absolute, e.g. /home/me/src/project")
	}
	p := rpc.RepoCloneParams{RepoID: u.Repo.String(), Path: filepath.Clean(in.Path)}
	if u.HasNode() {
		p.Namespace = u.Node.String()
	}
	return p, nil
}

// mcpCall dials the daemon, runs f and hangs up; errors are the daemon's
// (an *rpc.Error's message) or say that no daemon answers.
func mcpCall[T any](ctx context.Context, root string, f func(*rpc.Client) (T, error)) (*mcp.CallToolResult, T, error) {
	v, err := dialDo(ctx, root, f)
	return nil, v, err
}

func dialDo[T any](ctx context.Context, root string, f func(*rpc.Client) (T, error)) (T, error) {
	var zero T
	c, err := rpc.Dial(ctx, root)
	if err != nil {
		return zero, err
	}
	defer c.Close()
	return f(c)
}
