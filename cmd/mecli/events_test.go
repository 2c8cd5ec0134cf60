package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/rpc"
)

func TestEvents(t *testing.T) {
	root := startDaemon(t, newFakeDaemon())
	// The fake ends the stream after its events, as a stopping daemon does.
	_, out, _ := mecli(t, root, workDir, "events")
	if !strings.Contains(out, "peer.connected") || !strings.Contains(out, didBob+" (bob) 127.0.0.1:9001") ||
		!strings.Contains(out, "repo.announced") || !strings.Contains(out, repoHello) {
		t.Fatalf("events printed:\n%s", out)
	}
	_, out, _ = mecli(t, root, workDir, "events", "--type", rpc.EventRepoAnnounced, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev rpc.Event
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &ev) != nil || ev.Type != rpc.EventRepoAnnounced || ev.Repo != repoHello {
		t.Fatalf("filtered JSON events: %q", out)
	}
}
