package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/rpc"
)

// Nodes of two networks on one machine never pair, and node.connect says
// why; nodes of one network do; node.info shows the network.
func TestSeparateNetworks(t *testing.T) {
	on := func(alias, network string) *running {
		c := cfg(shortRoot(t), alias)
		c.Network = network
		return start(t, c)
	}
	lab1, lab2, main := on("lab1", "lab"), on("lab2", "lab"), on("main", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, _ := lab1.NodeInfo(ctx); info.Network != "lab" {
		t.Fatalf("node.info network %q, want lab", info.Network)
	}
	if info, _ := main.NodeInfo(ctx); info.Network != "main" {
		t.Fatalf("node.info network %q, want main", info.Network)
	}
	if _, err := lab1.NodeConnect(ctx, rpc.ConnectParams{Addr: lab2.Addr().String()}); err != nil {
		t.Fatalf("same network: %v", err)
	}
	for _, pair := range [][2]*running{{lab1, main}, {main, lab2}} {
		_, err := pair[0].NodeConnect(ctx, rpc.ConnectParams{Addr: pair[1].Addr().String()})
		if err == nil || !strings.Contains(err.Error(), "networks differ") {
			t.Fatalf("%s → %s: got %v, want an error saying the networks differ", pair[0].cfg.Alias, pair[1].cfg.Alias, err)
		}
	}
	if len(main.tr.Peers()) != 0 {
		t.Fatalf("main has peers of another network: %v", main.tr.Peers())
	}
}
