package identity

import (
	"errors"
	"strings"
	"testing"
)

// Every string the parsers accept must round-trip to the canonical form,
// and parsing the canonical form must give the same value.

func FuzzParseNodeID(f *testing.F) {
	f.Add("did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw")
	f.Add("did:key:z2DUYGZos3YrXrD4pQ9aAku2g7btumKcfTiMSyBC8btqFDJ")
	f.Add("did:key:z")
	f.Add("did:key:z111111111111111111111111111111111")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			return
		}
		again, err := ParseNodeID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q parsed to %s, which does not round-trip: %v", s, id, err)
		}
		_ = id.X25519() // must not panic for an accepted id
	})
}

func FuzzParseRepoID(f *testing.F) {
	f.Add("did:repo:zW1iF5iwCChifAcjZUrDbwD9o8LS76kFsz6bTZFEJhEqVCU")
	f.Add("zW1iF5iwCChifAcjZUrDbwD9o8LS76kFsz6bTZFEJhEqVCU")
	f.Add("did:repo:z1")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseRepoID(s)
		if err != nil {
			return
		}
		again, err := ParseRepoID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q parsed to %s, which does not round-trip: %v", s, id, err)
		}
	})
}

func FuzzParseAddr(f *testing.F) {
	f.Add("did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw@127.0.0.1:9000")
	f.Add("did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw@[::1]:1")
	f.Add("@:")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		again, err := ParseAddr(a.String())
		if err != nil || again != a {
			t.Fatalf("%q parsed to %s, which does not round-trip: %v", s, a, err)
		}
	})
}

// An accepted mega:// URL formats to a URL that parses to the same value; a
// refused one gets a one-line error.
func FuzzParseMegaURL(f *testing.F) {
	f.Add("mega://did:repo:zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp/did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw")
	f.Add("mega://zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp/z2DeuicgUFGK9784FgMs5DG57pbDLWGaDu6TnXCisMgptRw/")
	f.Add("zW1oyvR7ytXbjyCjwc5MgrzReSmbqpcy1NvcXb8ftKmDQdp")
	f.Add("mega://not-an-id")
	f.Add("z/z/z")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseMegaURL(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedURL) {
				t.Errorf("error %v does not wrap ErrMalformedURL", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(s, "\n\r") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if u.Repo.IsZero() {
			t.Fatalf("%q parsed to a zero repository", s)
		}
		str := u.String()
		if !strings.HasPrefix(str, MegaScheme+"z") || strings.Contains(str, "did:") {
			t.Errorf("%q formats as %q, not the short form", s, str)
		}
		if again, err := ParseMegaURL(str); err != nil || again != u {
			t.Errorf("%q parsed to %+v, whose String %q parses to %+v, %v", s, u, str, again, err)
		}
	})
}
