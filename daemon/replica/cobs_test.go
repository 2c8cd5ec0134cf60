package replica

import (
	"context"
	"slices"
	"testing"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/wire"
)

// A cob ref written into the owner's namespace is signed by PublishOwn,
// travels with a fetch (commit and all), survives the watcher's next
// import of the working repository, and PublishOwn with nothing new signs
// nothing.
func TestCobRefsAreSignedAndFetched(t *testing.T) {
	ctx := context.Background()
	owner, client, repo, _ := pair(t, 0, nil)
	ns := Namespace(owner.key.ID())
	bare := mustBare(t, owner, repo)
	ref := "refs/cobs/issue/" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	cob, err := bare.WriteChange(ctx, ns, ref, "", gitstore.ChangeCommit{BlobName: "change.cbor", Blob: []byte("x"), Message: "m", Author: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.PublishOwn(ctx, repo); err != nil {
		t.Fatal(err)
	}
	_, seq, _, _ := owner.store.SignedRefs(repo, owner.key.ID())
	if err := owner.PublishOwn(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if _, again, _, _ := owner.store.SignedRefs(repo, owner.key.ID()); again != seq {
		t.Fatalf("PublishOwn with nothing new signed again (seq %d → %d)", seq, again)
	}
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	got, _ := mustBare(t, client, repo).Refs(ctx, ns)
	if !slices.Contains(got, gitstore.Ref{Name: ref, OID: cob}) {
		t.Fatalf("the client's refs %v lack the cob ref", got)
	}
	git(t, client.Dir(repo), "cat-file", "-e", cob+"^{tree}")

	// The watcher imports the working repository again: the cob ref stays signed.
	path := owner.state(repo).Path
	git(t, path, "commit", "-q", "--allow-empty", "-m", "more")
	owner.checkWork(ctx, repo, path)
	raw, _, _, _ := owner.store.SignedRefs(repo, owner.key.ID())
	sr, err := wire.UnmarshalSignedRefs(raw)
	if err != nil || !slices.Contains(fromWireRefs(sr.Refs()), gitstore.Ref{Name: ref, OID: cob}) {
		t.Fatalf("after the watcher published, signed refs %v lack the cob ref (%v)", sr, err)
	}
}

// An ActivityAnnouncement of a held repository schedules a sync from its
// announcer at once; one of this node's own, or of a repository not held,
// does not.
func TestActivitySchedulesSync(t *testing.T) {
	owner, client, repo, _ := pair(t, 0, nil)
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	aa := &wire.ActivityAnnouncement{Repo: repo, Heads: [][32]byte{{1}}}
	client.HandleActivity(client.key.ID(), aa)
	select {
	case r := <-client.queue:
		t.Fatalf("own announcement scheduled %+v", r)
	default:
	}
	client.HandleActivity(owner.key.ID(), aa)
	select {
	case r := <-client.queue:
		if r.repo != repo || r.from != owner.key.ID() {
			t.Fatalf("scheduled %+v", r)
		}
	default:
		t.Fatal("no sync was scheduled")
	}
	other := newNode(t, &pipeNet{t: t}, nil)
	other.HandleActivity(owner.key.ID(), aa)
	select {
	case r := <-other.queue:
		t.Fatalf("a repository not held scheduled %+v", r)
	default:
	}
}
