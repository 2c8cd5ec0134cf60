package replica

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
)

// Handoff is what a clone made by git-remote-mega gets from the replica
// without packing anything: the replica's object files, hard-linked.
type Handoff struct {
	Location
	Refs []gitstore.Ref // the namespace's refs, as git upload-pack would advertise them
	Head string         // the branch the namespace's HEAD names ("" if none)
	// Keep is a .keep file made next to a linked pack that holds every
	// ref's object ("" if no single pack does): git, told of it, needs no
	// connectivity walk, since every object the replica holds was checked
	// complete when it arrived.
	Keep string
}

// HandOff links the objects of the replica of t into objectsDir, the
// object directory of a repository being cloned (git clone mega://), as
// Clone does for mecli repo clone: one code path (gitstore's LinkObjects)
// under the replica's read lock, so no repack removes a pack meanwhile.
func (s *Service) HandOff(ctx context.Context, t Target, objectsDir string) (Handoff, error) {
	loc, err := s.Locate(ctx, t)
	if err != nil {
		return Handoff{}, err
	}
	if !filepath.IsAbs(objectsDir) {
		return Handoff{}, errorf(ErrInvalid, "the object directory %q is not an absolute path", objectsDir)
	}
	if fi, err := os.Stat(objectsDir); err != nil || !fi.IsDir() {
		return Handoff{}, errorf(ErrInvalid, "the object directory %s does not exist", objectsDir)
	}
	bare, err := s.openBare(t.Repo)
	if err != nil {
		return Handoff{}, err
	}
	defer s.readLock(t.Repo)()
	h := Handoff{Location: loc}
	if h.Refs, err = bare.Refs(ctx, loc.Namespace); err != nil {
		return Handoff{}, err
	}
	if head, err := bare.HEAD(ctx, loc.Namespace); err == nil {
		h.Head = head
	}
	packs, err := bare.LinkObjects(objectsDir)
	if err != nil {
		return Handoff{}, errorf(ErrInvalid, "%w", err)
	}
	tips := make([]string, 0, len(h.Refs))
	for _, r := range h.Refs {
		tips = append(tips, r.OID)
	}
	if p := gitstore.PackHolding(packs, tips); p != "" && len(tips) > 0 {
		keep := strings.TrimSuffix(p, ".pack") + ".keep"
		if err := os.WriteFile(keep, []byte("mega clone\n"), 0o644); err == nil {
			h.Keep = keep
		}
	}
	return h, nil
}
