package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/rpc"
)

func init() {
	register(&command{
		path:   "repo verify",
		args:   "[REPO_ID]",
		nargs:  anyArgs,
		method: rpc.MethodRepoVerify,
		long: `Check the replica of REPO_ID, or of every repository the node holds
(rpc repo.verify): git fsck of its objects, and the refs of every namespace
against the signed refs the node holds. A namespace that differs is reset to
its signed refs (or a sync is scheduled) and reported. Exits 1 if any
replica failed a check.`,
		run: runRepoVerify,
	})
}

func runRepoVerify(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usagef("at most one REPO_ID")
	}
	id := ""
	if len(args) == 1 {
		var err error
		if id, err = parseRepoID(args[0]); err != nil {
			return err
		}
	}
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.RepoVerify(ctx, id)
	if err != nil {
		return interrupted(ctx, err)
	}
	if err := e.output(res, func(w io.Writer) {
		for _, r := range res.Repos {
			state := "ok"
			if !r.OK {
				state = "FAILED"
			}
			fmt.Fprintf(w, "%-6s %s (%s)\n", state, printable(r.Name), r.RepoID)
			if r.Fsck != "" {
				fmt.Fprintf(w, "       git fsck: %s\n", printable(r.Fsck))
			}
			for _, ns := range r.Namespaces {
				if !ns.OK {
					fmt.Fprintf(w, "       %s: %s\n", shortDID(ns.Node), printable(ns.Problem))
				}
			}
		}
		fmt.Fprintf(w, "%d replicas checked, %d failed\n", res.Checked, res.Failed)
	}); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("%d of %d replicas failed verification", res.Failed, res.Checked)
	}
	return nil
}
