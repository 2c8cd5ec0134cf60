package handshake

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCheckNetwork(t *testing.T) {
	for _, ok := range []string{"main", "lab", "a.b_c-9", strings.Repeat("x", MaxNetworkLen)} {
		if err := CheckNetwork(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Lab", "a/b", "a b", "é", strings.Repeat("x", MaxNetworkLen+1)} {
		if err := CheckNetwork(bad); !errors.Is(err, ErrBadNetwork) {
			t.Errorf("%q: got %v, want ErrBadNetwork", bad, err)
		}
	}
}

func TestALPNAndPrologue(t *testing.T) {
	if ALPN("") != BaseALPN || ALPN(DefaultNetwork) != BaseALPN || ALPN("lab") != "megaengine/1/lab" {
		t.Fatalf("ALPN: %q %q %q", ALPN(""), ALPN(DefaultNetwork), ALPN("lab"))
	}
	b := testBinding(3)
	if string(prologue(b, DefaultNetwork)) != string(prologue(b, "")) {
		t.Fatal("the default network must keep the version-1 prologue")
	}
	if got := string(prologue(b, "lab")); got != PrologueVersion+string(b)+"/lab" {
		t.Fatalf("prologue of lab: %x", got)
	}
}

// runNetworks runs a handshake with the initiator on in and the responder
// on rn, over one pipe with the same binding.
func runNetworks(t *testing.T, in, rn string) (ini, resp error) {
	t.Helper()
	ik, rk := newKey(t), newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, c2 := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer c2.Close()
		_, err := RespondOn(ctx, c2, rk, testBinding(1), rn, nil)
		done <- err
	}()
	_, err := InitiateOn(ctx, c1, ik, rk.ID(), testBinding(1), in)
	c1.Close()
	return err, <-done
}

func TestNetworksNeverPair(t *testing.T) {
	checkGoroutines(t)
	if ini, resp := runNetworks(t, "lab", "lab"); ini != nil || resp != nil {
		t.Fatalf("same network: %v / %v", ini, resp)
	}
	for _, pair := range [][2]string{{"lab", "main"}, {"main", "lab"}, {"lab", "prod"}} {
		ini, resp := runNetworks(t, pair[0], pair[1])
		wantErr(t, "responder "+pair[1], resp, ErrDecrypt)
		wantErr(t, "initiator "+pair[0], ini, ErrHandshakeClosed)
		if !strings.Contains(ini.Error(), "network") {
			t.Errorf("initiator error does not mention the network: %v", ini)
		}
	}
}
