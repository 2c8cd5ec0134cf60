package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/megaengine/megaengine/rpc"
)

func init() {
	register(&command{
		path:   "events",
		method: rpc.MethodEventsSubscribe,
		long: `Print events as the daemon reports them until interrupted: peers
connecting and disconnecting, nodes discovered, repositories announced. With
--json, one JSON object per line.

Event types: ` + strings.Join(rpc.EventTypes(), ", "),
		flags: func(fs *pflag.FlagSet) {
			fs.StringSlice("type", nil, "only these event types (repeatable or comma-separated)")
		},
		run: runEvents,
	})
}

func runEvents(ctx context.Context, e *env, fs *pflag.FlagSet, _ []string) error {
	types, _ := fs.GetStringSlice("type")
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.Close()
	enc := json.NewEncoder(e.stdout)
	err = c.Subscribe(ctx, types, func(ev rpc.Event) {
		if e.jsonMode {
			enc.Encode(ev)
			return
		}
		line := fmt.Sprintf("%s  %-17s %s", ev.Time.Local().Format("15:04:05.000"), ev.Type, ev.DID)
		if ev.Alias != "" {
			line += " (" + ev.Alias + ")"
		}
		if ev.Repo != "" {
			line += " " + ev.Repo
		}
		if len(ev.Addresses) > 0 {
			line += " " + strings.Join(ev.Addresses, ",")
		}
		if ev.Reason != "" {
			line += ": " + ev.Reason
		}
		fmt.Fprintln(e.stdout, printable(line))
	})
	return interrupted(ctx, err)
}
