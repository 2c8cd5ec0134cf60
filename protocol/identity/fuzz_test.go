package identity

import "testing"

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
