package main

// A NAT laboratory in network namespaces, for the relay and NAT tests:
// a "public" segment 198.18.0.0/24 (the benchmark range) on a bridge in
// namespace pub, where the relay runs at 198.18.0.1; NAT routers nat1 and
// nat2 with WAN addresses 198.18.0.11 and .12 that masquerade their LANs
// 10.0.1.0/24 and 10.0.2.0/24 (nft); node a at 10.0.1.2 behind nat1 and
// node b at 10.0.2.2 behind nat2. Every test removes its namespaces.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const relayIP = "198.18.0.1"

type natLab struct {
	prefix string
}

// ns is the full name of the lab's namespace role.
func (l *natLab) ns(role string) string { return l.prefix + role }

// newNATLab builds the topology, or skips the test with the reason when
// it cannot (not root, ip or nft missing).
func newNATLab(t testing.TB) *natLab {
	t.Helper()
	needBinaries(t)
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("network namespace tests need %s (apt-get install -y iproute2 nftables)", tool)
		}
	}
	sweepLabs()
	b := make([]byte, 3)
	rand.Read(b)
	l := &natLab{prefix: fmt.Sprintf("me-%d-%s-", os.Getpid(), hex.EncodeToString(b))}
	roles := []string{"pub", "nat1", "nat2", "a", "b"}
	t.Cleanup(func() {
		for _, r := range roles {
			exec.Command("ip", "netns", "del", l.ns(r)).Run()
		}
	})
	for _, r := range roles {
		l.run(t, "", "ip", "netns", "add", l.ns(r))
		l.run(t, r, "ip", "link", "set", "lo", "up")
	}
	l.run(t, "pub", "ip", "link", "add", "br0", "type", "bridge")
	l.run(t, "pub", "ip", "addr", "add", relayIP+"/24", "dev", "br0")
	l.run(t, "pub", "ip", "link", "set", "br0", "up")
	for i, host := range []string{"a", "b"} {
		l.natRouter(t, i+1, host)
	}
	return l
}

// sweepLabs deletes the namespaces of labs whose test process is gone (a
// test binary killed before its cleanup ran).
func sweepLabs() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		rest, ok := strings.CutPrefix(name, "me-")
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// natRouter connects nat<i> to the bridge and host behind it. Like a home
// router it drops unsolicited packets addressed to itself: accepted, such
// a packet (an early hole punch) would leave a conntrack entry that makes
// masquerade pick another port for the host's own packets to that peer.
func (l *natLab) natRouter(t testing.TB, i int, host string) {
	nat, w := fmt.Sprintf("nat%d", i), fmt.Sprintf("w%d", i)
	l.run(t, "pub", "ip", "link", "add", w, "type", "veth", "peer", "name", "wan", "netns", l.ns(nat))
	l.run(t, "pub", "ip", "link", "set", w, "master", "br0", "up")
	l.run(t, nat, "ip", "addr", "add", fmt.Sprintf("198.18.0.1%d/24", i), "dev", "wan")
	l.run(t, nat, "ip", "link", "set", "wan", "up")
	l.run(t, nat, "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", l.ns(host))
	l.run(t, nat, "ip", "addr", "add", fmt.Sprintf("10.0.%d.1/24", i), "dev", "lan")
	l.run(t, nat, "ip", "link", "set", "lan", "up")
	l.run(t, host, "ip", "addr", "add", fmt.Sprintf("10.0.%d.2/24", i), "dev", "eth0")
	l.run(t, host, "ip", "link", "set", "eth0", "up")
	l.run(t, host, "ip", "route", "add", "default", "via", fmt.Sprintf("10.0.%d.1", i))
	l.run(t, nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.nft(t, nat, `table ip nat {
	chain postrouting_nat { type nat hook postrouting priority 100; oifname "wan" masquerade; }
}
table ip filter {
	chain forward_filter {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan" accept
	}
	chain input_filter {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iifname { "lan", "lo" } accept
	}
}`)
}

// blockPunching makes nat<i> drop every packet from the other NAT, so only
// the relay's traffic crosses it: hole punching cannot succeed.
func (l *natLab) blockPunching(t testing.TB, i int) {
	t.Helper()
	other := fmt.Sprintf("198.18.0.1%d", 3-i)
	l.nft(t, fmt.Sprintf("nat%d", i), fmt.Sprintf(`table ip block {
	chain prerouting_block { type filter hook prerouting priority -300; iifname "wan" ip saddr %s drop; }
}`, other))
}

func (l *natLab) nft(t testing.TB, role, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.ns(role), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", role, err, out)
	}
}

// run runs a command in the lab's namespace role ("" : on the host).
func (l *natLab) run(t testing.TB, role string, args ...string) {
	t.Helper()
	if role != "" {
		args = append([]string{"ip", "netns", "exec", l.ns(role)}, args...)
	}
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// med starts med in role's namespace (ip netns exec replaces itself with
// med, so the process the test kills is the daemon).
func (l *natLab) med(t testing.TB, role, root string, args ...string) *proc {
	t.Helper()
	full := append([]string{"netns", "exec", l.ns(role), medBin, "--root", root, "--alias", role,
		"--idle-timeout", idleTimeout.String()}, args...)
	return startProc(t, role, "ip", full...)
}
