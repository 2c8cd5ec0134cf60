package main

import (
	"bytes"
	"strings"
	"testing"
)

func pkts(lines ...string) string {
	var b bytes.Buffer
	for _, l := range lines {
		if l == "" {
			writePkt(&b, nil)
		} else {
			writePkt(&b, []byte(l))
		}
	}
	return b.String()
}

// A push to refs/patches reaches receive-pack as patchRefIn, and its
// status comes back under the name git pushed, in side-band or not;
// other refs and the pack pass unchanged.
func TestPatchRefRewriting(t *testing.T) {
	old, nw := strings.Repeat("0", 40), strings.Repeat("a", 40)
	in := pkts(old+" "+nw+" refs/patches\x00report-status side-band-64k\n", old+" "+nw+" refs/heads/x\n", "") + "PACKDATA"
	var got bytes.Buffer
	if err := rewriteCommands(&got, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	want := pkts(old+" "+nw+" refs/patches/new\x00report-status side-band-64k\n", old+" "+nw+" refs/heads/x\n", "") + "PACKDATA"
	if got.String() != want {
		t.Fatalf("commands\n got %q\nwant %q", got.String(), want)
	}
	report := pkts("unpack ok\n", "ok refs/patches/new\n", "ng refs/heads/x hook declined\n", "")
	out := pkts("ref line\x00report-status\n", "") + pkts("\x01"+report, "ok refs/patches/new\n")
	got.Reset()
	if err := rewriteAdvertisement(&got, strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	wantReport := pkts("unpack ok\n", "ok refs/patches\n", "ng refs/heads/x hook declined\n", "")
	if want := pkts("ref line\x00report-status\n", "") + pkts("\x01"+wantReport, "ok refs/patches\n"); got.String() != want {
		t.Fatalf("report\n got %q\nwant %q", got.String(), want)
	}
}

func TestSplitMessage(t *testing.T) {
	for in, want := range map[string][2]string{
		`Relay fallback\n\nDial through a relay.`: {"Relay fallback", "Dial through a relay."},
		"Title only\n": {"Title only", ""},
	} {
		if ti, d := splitMessage(in); ti != want[0] || d != want[1] {
			t.Errorf("splitMessage(%q) = %q, %q", in, ti, d)
		}
	}
}
