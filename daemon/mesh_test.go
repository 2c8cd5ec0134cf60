package daemon

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/rpc"
)

// A node that wants one peer but follows a repository dials holders of it
// until MeshLinks of them are connected (spec/scale.md §2.4).
func TestFollowerMesh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := start(t, fastCfg(shortRoot(t), "owner"))
	info, err := owner.RepoAdd(ctx, rpc.RepoAddParams{Path: workRepo(t)})
	if err != nil {
		t.Fatal(err)
	}
	var holders []*running
	for i := range MeshLinks {
		holders = append(holders, start(t, fastCfg(shortRoot(t), fmt.Sprintf("holder%d", i), owner)))
	}
	c := fastCfg(shortRoot(t), "follower", owner)
	c.TargetPeers = 1 // the bootstrap node is enough by that count
	f := start(t, c)
	testutil.WaitForState(t, "the follower to hear of every holder", 30*time.Second, func() (bool, string) {
		d, err := f.RepoShow(ctx, rpc.RepoIDParams{RepoID: info.RepoID})
		others := slices.DeleteFunc(d.Holders, func(h string) bool { return h == f.ID().String() })
		return err == nil && len(others) == MeshLinks+1, fmt.Sprint(others, err)
	})
	if _, err := f.RepoSeed(ctx, rpc.RepoIDParams{RepoID: info.RepoID}, true); err != nil {
		t.Fatal(err)
	}
	f.dialer.Kick()
	testutil.WaitForState(t, "the follower to link to holders of the repository it follows", 30*time.Second, func() (bool, string) {
		linked := 0
		for _, h := range append(holders, owner) {
			if f.tr.Peer(h.ID()) != nil {
				linked++
			}
		}
		return linked >= MeshLinks, fmt.Sprintf("%d linked", linked)
	})
}
