package transport

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Two networks on one machine never pair, in either direction; nodes of
// one named network do.
func TestNetworksNeverPair(t *testing.T) {
	on := func(name string) func(*Config) { return func(c *Config) { c.Network = name } }
	lab1, _ := newNode(t, on("lab"))
	lab2, _ := newNode(t, on("lab"))
	main1, _ := newNode(t, nil)
	prod, _ := newNode(t, on("prod"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lab1.Dial(ctx, addrOf(lab2)); err != nil {
		t.Fatalf("same network: %v", err)
	}
	for _, pair := range [][2]*Transport{{lab1, main1}, {main1, lab1}, {lab1, prod}} {
		_, err := pair[0].Dial(ctx, addrOf(pair[1]))
		if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "networks differ") {
			t.Fatalf("%s → %s: got %v, want ErrNetwork", pair[0].Network(), pair[1].Network(), err)
		}
		if pair[0].Peer(pair[1].ID()) != nil || pair[1].Peer(pair[0].ID()) != nil {
			t.Fatal("nodes of different networks are peers")
		}
	}
}

func TestBadNetworkRefused(t *testing.T) {
	k, _ := identity.GenerateKey()
	cfg := DefaultConfig(k, "127.0.0.1:0")
	cfg.Network = "Not/Valid"
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted an invalid network name")
	}
}
