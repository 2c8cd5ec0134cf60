package replica

import (
	"context"
	"errors"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// The owner adds the client as a delegate and raises the threshold; the
// client fetches the new versions. A rename is then a proposal on each
// node; a different proposal replayed by a holder does not replace the one
// the node signed, and the same one signed by the other delegate applies.
func TestIdentityVersionsAndProposals(t *testing.T) {
	ctx := context.Background()
	owner, client, repo, _ := pair(t, 0, nil)
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Edit(ctx, repo, EditDelegates(client.key.ID(), true)); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Edit(ctx, repo, func(c *wire.DocChange) error { c.Threshold = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	doc, err := client.Doc(repo)
	if err != nil || doc.Version() != 3 || doc.Threshold() != 2 || !doc.IsDelegate(client.key.ID()) {
		t.Fatalf("the client holds %+v, %v", doc, err)
	}
	if _, err := client.Edit(ctx, repo, EditDelegates(client.key.ID(), true)); !errors.Is(err, ErrConflict) {
		t.Fatalf("adding a delegate twice: %v", err)
	}

	rename := func(name string) func(*wire.DocChange) error {
		return func(c *wire.DocChange) error { c.Name = name; return nil }
	}
	mine, err := client.Edit(ctx, repo, rename("client's name"))
	if err != nil || mine.Applied || mine.Missing != 1 {
		t.Fatalf("a proposal: %+v %v", mine, err)
	}
	if _, err := owner.Edit(ctx, repo, rename("owner's name")); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, client, owner, repo); err != nil { // the owner's proposal arrives
		t.Fatal(err)
	}
	if p := client.Proposal(repo); p == nil || p.Name() != "client's name" {
		t.Fatalf("a replayed proposal replaced the node's own: %+v", p)
	}
	if _, err := owner.Edit(ctx, repo, rename("client's name")); err != nil { // the owner signs the client's
		t.Fatal(err)
	}
	if _, err := fetch(t, client, owner, repo); err != nil {
		t.Fatal(err)
	}
	if doc, _ := client.Doc(repo); doc.Version() != 4 || doc.Name() != "client's name" || len(doc.Signers()) != 2 {
		t.Fatalf("after the second signature the client holds version %d %q", doc.Version(), doc.Name())
	}
	if client.Proposal(repo) != nil {
		t.Fatal("the applied proposal is still pending")
	}
	var nobody identity.NodeID
	if _, err := client.Edit(ctx, repo, EditDelegates(nobody, false)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a non-delegate: %v", err)
	}
}
