package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// identityCommands change a repository's identity document: each signs
// its next version (spec/repo.md §2.2).
var identityCommands = []*command{
	{
		path:   "repo edit",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoEdit,
		long: `Sign a new version of the repository's identity document with a new name,
description or threshold; every holder fetches it. With a threshold above one
it is a proposal until enough delegates have made the same change on their
nodes ('mecli repo show' lists it). Without REPO_ID, the repository of the
current directory.`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("name", "", "the new name")
			fs.String("description", "", "the new description")
			fs.Int("threshold", 0, "delegates needed to sign a version and agree on the canonical branch")
		},
		run: runRepoEdit,
	},
	{
		path:   "repo delegate add",
		args:   "DID [REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoDelegateAdd,
		long: `Make DID (a did:key) a delegate of the repository: its namespace counts for the
canonical branch, and it may merge patches and sign the next identity version.`,
		run: runRepoDelegate(true),
	},
	{
		path:   "repo delegate remove",
		args:   "DID [REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoDelegateRemove,
		long:   "Remove DID from the repository's delegates; its merges no longer count.",
		run:    runRepoDelegate(false),
	},
}

func init() { register(identityCommands...) }

func runRepoEdit(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
	p := rpc.RepoEditParams{}
	if fs.Changed("name") {
		name, _ := fs.GetString("name")
		p.Name = &name
	}
	if fs.Changed("description") {
		desc, _ := fs.GetString("description")
		p.Description = &desc
	}
	p.Threshold, _ = fs.GetInt("threshold")
	if p.Name == nil && p.Description == nil && p.Threshold == 0 {
		return usagef("nothing to change: give --name, --description or --threshold")
	}
	c, id, err := dialRepo(ctx, e, args)
	if err != nil {
		return err
	}
	defer c.Close()
	p.RepoID = id
	res, err := c.RepoEdit(ctx, p)
	if err != nil {
		return interrupted(ctx, err)
	}
	return printEdit(e, res)
}

func runRepoDelegate(add bool) func(context.Context, *env, *pflag.FlagSet, []string) error {
	return func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
		if len(args) == 0 {
			return usagef("missing DID, the node to %s", map[bool]string{true: "add", false: "remove"}[add])
		}
		did, err := identity.ParseNodeID(args[0])
		if err != nil {
			return usagef("%q is not a node id (did:key:z…): %v", args[0], err)
		}
		c, id, err := dialRepo(ctx, e, args[1:])
		if err != nil {
			return err
		}
		defer c.Close()
		res, err := c.RepoDelegate(ctx, rpc.RepoDelegateParams{RepoID: id, Delegate: did.String()}, add)
		if err != nil {
			return interrupted(ctx, err)
		}
		return printEdit(e, res)
	}
}

func printEdit(e *env, res rpc.EditResult) error {
	return e.output(res, func(w io.Writer) {
		id := res.Identity
		if res.Applied {
			fmt.Fprintf(w, "Signed version %d of the identity of %s\n", id.Version, printable(id.Name))
		} else {
			fmt.Fprintf(w, "Proposed version %d of the identity of %s: %d more delegate(s) must make the same change\n", id.Version, printable(id.Name), res.Missing)
		}
		printIdent(w, id)
	})
}

func printIdent(w io.Writer, id rpc.RepoIdent) {
	fmt.Fprintf(w, "  name: %s\n", printable(id.Name))
	if id.Description != "" {
		fmt.Fprintf(w, "  description: %s\n", printable(id.Description))
	}
	fmt.Fprintf(w, "  delegates (%d, threshold %d): %s\n", len(id.Delegates), id.Threshold, strings.Join(id.Delegates, ", "))
	fmt.Fprintf(w, "  signed by: %s\n", strings.Join(id.Signers, ", "))
}
