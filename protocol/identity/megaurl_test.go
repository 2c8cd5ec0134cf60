package identity

import (
	"errors"
	"strings"
	"testing"
)

const (
	urlRepo = "did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp"
	urlNode = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw" // RFC 8032 test 1
	// urlLegacy is urlNode in the seed implementation's did:key form.
	urlLegacy = "did:key:z2DeuicgUFGK9784FgMs5DG57pbDLWGaDu6TnXCisMgptRw"
)

func TestParseMegaURL(t *testing.T) {
	short := strings.TrimPrefix(urlRepo, "did:repo:")
	shortNode := strings.TrimPrefix(urlNode, "did:key:")
	for _, tc := range []struct {
		url  string
		node string // "": the canonical namespace
		err  string // "": valid
	}{
		{url: "mega://" + short},
		{url: "mega://" + urlRepo},
		{url: "mega://" + short + "/"},
		{url: "mega://" + short + "/" + shortNode, node: urlNode},
		{url: "mega://" + short + "/" + urlNode, node: urlNode},
		{url: "mega://" + urlRepo + "/" + urlNode, node: urlNode},
		{url: "mega://" + urlRepo + "/" + shortNode + "/", node: urlNode},
		{url: "mega://" + short + "/" + urlLegacy, node: urlNode},
		{url: "mega://" + short + "/" + strings.TrimPrefix(urlLegacy, "did:key:"), node: urlNode},
		{url: short}, // git's mega::<address> form
		{url: short + "/" + shortNode, node: urlNode},       // likewise
		{url: urlRepo + "/" + urlNode + "/", node: urlNode}, // likewise

		{url: "mega://not-an-id", err: `invalid URL "mega://not-an-id": "not-an-id" is not a repository id (did:repo:z… or z…); want mega://<repo-id>[/<node-did>]`},
		{url: "mega://", err: `invalid URL "mega://": no repository id; want mega://<repo-id>[/<node-did>]`},
		{url: "mega:///" + shortNode, err: "no repository id"},
		{url: "mega://" + short + "x", err: "is not a repository id"},
		{url: "mega://z" + short, err: "is not a repository id"},
		{url: "mega://" + urlNode, err: "is not a repository id"},
		{url: "mega://" + short + "/z6Mkfoo", err: `"z6Mkfoo" is not a node id (did:key:z6Mk… or z6Mk…)`},
		{url: "mega://" + short + "/" + urlRepo, err: "is not a node id"},
		{url: "mega://" + short + "/did:repo:" + shortNode, err: "is not a node id"},
		{url: "mega://" + short + "/" + shortNode + "/main", err: `/main": want mega://<repo-id>[/<node-did>]`},
		{url: "mega://" + short + "//" + shortNode, err: "want mega://"},
		{url: "mega://" + short + "//", err: "want mega://"},
		{url: "mega://" + short + "?ns=" + shortNode, err: "is not a repository id"},
		{url: "mega://" + short + "#main", err: "is not a repository id"},
		{url: "https://example.org/" + short, err: `invalid URL "https://example.org/` + short + `": want mega://`},
		{url: "MEGA://" + short, err: "invalid URL"},
		{url: "mega:" + short, err: "is not a repository id"},
		{url: "mega://" + short + "/" + strings.Repeat("z", 600), err: "invalid URL: longer than 512 bytes"},
		{url: "", err: "no repository id"},
		{url: "/", err: "no repository id"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseMegaURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMegaURL(%q) = %+v, %v; want an error containing %q", tc.url, got, err, tc.err)
				}
				if !errors.Is(err, ErrMalformedURL) {
					t.Errorf("the error does not wrap ErrMalformedURL: %v", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("the error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMegaURL(%q): %v", tc.url, err)
			}
			if got.Repo.String() != urlRepo {
				t.Errorf("repo %s, want %s", got.Repo, urlRepo)
			}
			if got.HasNode() != (tc.node != "") || (got.HasNode() && got.Node.String() != tc.node) {
				t.Errorf("node %v %s, want %q", got.HasNode(), got.Node, tc.node)
			}
			// The short form parses to the same URL.
			again, err := ParseMegaURL(got.String())
			if err != nil || again != got {
				t.Errorf("ParseMegaURL(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestMegaURLString(t *testing.T) {
	repo, err := ParseRepoID(urlRepo)
	if err != nil {
		t.Fatal(err)
	}
	node, err := ParseNodeID(urlLegacy)
	if err != nil {
		t.Fatal(err)
	}
	short := "mega://" + strings.TrimPrefix(urlRepo, "did:repo:")
	for _, tc := range []struct {
		u    MegaURL
		want string
	}{
		{MegaURL{Repo: repo}, short},
		{MegaURL{Repo: repo, Node: node}, short + "/" + strings.TrimPrefix(urlNode, "did:key:")},
	} {
		if got := tc.u.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.u, got, tc.want)
		}
	}
	if (MegaURL{Repo: repo}).HasNode() || !(MegaURL{Repo: repo, Node: node}).HasNode() {
		t.Error("HasNode does not follow Node")
	}
}
