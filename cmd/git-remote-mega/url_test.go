package main

import (
	"strings"
	"testing"
)

const (
	testRepo = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp"
	testNode = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // RFC 8032 test 1
	// testLegacy is testNode in the seed implementation's did:key form.
	testLegacy = "did:key:z2DeuicgUFGK9784FgMs5DG57pbDLWGaDu6TnXCisMgptRw"
)

func TestParseURL(t *testing.T) {
	short := strings.TrimPrefix(testRepo, "did:repo:")
	shortNode := strings.TrimPrefix(testNode, "did:key:")
	for _, tc := range []struct {
		url  string
		node string // "" : no node
		err  string // "" : valid
	}{
		{url: "mega://" + short},
		{url: "mega://" + testRepo},
		{url: "mega://" + short + "/"},
		{url: "mega://" + short + "/" + shortNode, node: testNode},
		{url: "mega://" + short + "/" + testNode, node: testNode},
		{url: "mega://" + testRepo + "/" + testNode, node: testNode},
		{url: "mega://" + testRepo + "/" + shortNode + "/", node: testNode},
		{url: "mega://" + short + "/" + testLegacy, node: testNode},
		{url: short, node: ""},                         // git's mega::<address> form
		{url: short + "/" + shortNode, node: testNode}, // likewise

		{url: "mega://not-an-id", err: `"not-an-id" is not a repository id`},
		{url: "mega://", err: "no repository id"},
		{url: "mega:///" + shortNode, err: "no repository id"},
		{url: "mega://" + short + "x", err: "is not a repository id"},
		{url: "mega://z" + short, err: "is not a repository id"},
		{url: "mega://" + testNode, err: "is not a repository id"},
		{url: "mega://" + short + "/z6Mkfoo", err: `"z6Mkfoo" is not a node id`},
		{url: "mega://" + short + "/" + testRepo, err: "is not a node id"},
		{url: "mega://" + short + "/" + shortNode + "/main", err: "want mega://<repo-id>[/<node-did>]"},
		{url: "mega://" + short + "//" + shortNode, err: "want mega://"},
		{url: "mega://" + short + "?ns=" + shortNode, err: "is not a repository id"},
		{url: "https://example.org/" + short, err: `invalid URL "https://example.org/`},
		{url: "MEGA://" + short, err: "invalid URL"},
		{url: "mega://" + short + "/" + strings.Repeat("z", 600), err: "longer than 512 bytes"},
		{url: "", err: "no repository id"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseURL(%q) = %+v, %v; want an error containing %q", tc.url, got, err, tc.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("the error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tc.url, err)
			}
			if got.Repo.String() != testRepo {
				t.Errorf("repo %s, want %s", got.Repo, testRepo)
			}
			if got.HasNode != (tc.node != "") || (got.HasNode && got.Node.String() != tc.node) {
				t.Errorf("node %v %s, want %q", got.HasNode, got.Node, tc.node)
			}
			// The short form parses to the same target.
			again, err := parseURL(got.String())
			if err != nil || again != got {
				t.Errorf("parseURL(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	tg, err := parseURL("mega://" + testRepo + "/" + testNode)
	if err != nil {
		t.Fatal(err)
	}
	want := "mega://" + strings.TrimPrefix(testRepo, "did:repo:") + "/" + strings.TrimPrefix(testNode, "did:key:")
	if tg.String() != want {
		t.Errorf("String() = %q, want %q", tg.String(), want)
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("mega://" + testRepo + "/" + testNode)
	f.Add("mega://not-an-id")
	f.Add("z/z/z")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseURL(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(s, "\n\r") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if again, err := parseURL(tg.String()); err != nil || again != tg {
			t.Errorf("%q parsed to %+v, whose String %q parses to %+v, %v", s, tg, tg.String(), again, err)
		}
	})
}
