package wire

import (
	"errors"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// A withdrawal is a RepoAnnouncement with key 5 set; false is never written,
// so an announcement without it encodes as before, and an explicit false
// is not canonical.
func TestRepoAnnouncementWithdrawn(t *testing.T) {
	key, _ := identity.GenerateKey()
	repo, err := identity.NewRepoID(make([]byte, 20), key.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, withdrawn := range []bool{false, true} {
		env := mustSign(t, key, &RepoAnnouncement{Repo: repo, Withdrawn: withdrawn})
		_, body, err := open(mustMarshal(t, env), vectorTime)
		if err != nil {
			t.Fatal(err)
		}
		if got := body.(*RepoAnnouncement).Withdrawn; got != withdrawn {
			t.Fatalf("withdrawn %v came back as %v", withdrawn, got)
		}
	}
	explicitFalse := mustCBOR(t, map[int]any{1: repo.Multihash(), 2: make([]byte, 32), 3: 0, 4: make([]byte, 32), 5: false})
	if _, err := decodeRepoAnnouncement(explicitFalse); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("withdrawn=false written out: %v, want a decoding error", err)
	}
}
