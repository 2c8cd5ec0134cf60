package wire

import (
	"bytes"
	"fmt"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// ActivityAnnouncement (type 3) tells the network the origin's current heads
// of a repository's collaboration event DAG, so that peers missing them sync.
// Its subject is the repository id.
//
// Map keys (ONLY APPEND, never renumber); both are required:
// 1 repo (34-byte multihash), 2 heads (array of 32-byte event ids).
type ActivityAnnouncement struct {
	// Repo is the repository; the zero id is invalid.
	Repo identity.RepoID
	// Heads are 1–MaxHeads collaboration event ids (32 bytes each) in strictly ascending bytewise order.
	Heads [][32]byte
}

type activityAnnouncementCBOR struct {
	Repo  []byte   `cbor:"1,keyasint"`
	Heads [][]byte `cbor:"2,keyasint"`
}

// Type returns TypeActivityAnnouncement.
func (*ActivityAnnouncement) Type() MsgType { return TypeActivityAnnouncement }

// Subject returns the repository id ("did:repo:z…").
func (a *ActivityAnnouncement) Subject() string { return a.Repo.String() }

// Validate checks the repository id and the number and order of heads.
func (a *ActivityAnnouncement) Validate() error {
	if a == nil {
		return invalid("nil ActivityAnnouncement")
	}
	if a.Repo.IsZero() {
		return invalid("zero repository id")
	}
	if len(a.Heads) == 0 || len(a.Heads) > MaxHeads {
		return invalid("%d heads, want 1-%d", len(a.Heads), MaxHeads)
	}
	for i := 1; i < len(a.Heads); i++ {
		if bytes.Compare(a.Heads[i-1][:], a.Heads[i][:]) >= 0 {
			return invalid("heads not in strictly ascending order at %d", i)
		}
	}
	return nil
}

func (a *ActivityAnnouncement) encode() ([]byte, error) {
	heads := make([][]byte, len(a.Heads))
	for i := range a.Heads {
		heads[i] = a.Heads[i][:]
	}
	return cborx.Marshal(activityAnnouncementCBOR{Repo: a.Repo.Multihash(), Heads: heads})
}

func decodeActivityAnnouncement(b []byte) (*ActivityAnnouncement, error) {
	var w activityAnnouncementCBOR
	if err := cborx.UnmarshalCanonical(b, &w); err != nil {
		return nil, decodeError("ActivityAnnouncement", err)
	}
	if w.Heads == nil {
		return nil, fmt.Errorf("decoding ActivityAnnouncement: %w: heads null", ErrMalformed)
	}
	repo, err := decodeRepoID(w.Repo)
	if err != nil {
		return nil, fmt.Errorf("decoding ActivityAnnouncement: %w", err)
	}
	// The count is checked before the heads are copied.
	if len(w.Heads) > MaxHeads {
		return nil, fmt.Errorf("decoding ActivityAnnouncement: %w", invalid("%d heads, max %d", len(w.Heads), MaxHeads))
	}
	a := &ActivityAnnouncement{Repo: repo, Heads: make([][32]byte, len(w.Heads))}
	for i, h := range w.Heads {
		if err := decodeFixed(a.Heads[i][:], h, "head"); err != nil {
			return nil, fmt.Errorf("decoding ActivityAnnouncement: %w", err)
		}
	}
	return a, nil
}
