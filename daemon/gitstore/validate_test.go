package gitstore

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckers(t *testing.T) {
	sha1 := strings.Repeat("a1", 20)
	sha256 := strings.Repeat("0f", 32)
	for _, ok := range []string{sha1, sha256} {
		if err := CheckOID(ok); err != nil {
			t.Errorf("CheckOID(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "HEAD", "-x", strings.ToUpper(sha1), sha1[:39], sha1 + "0", sha1[:39] + "g", "--all", sha1[:20] + " " + sha1[:19], sha256 + "00"} {
		if err := CheckOID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckOID(%q) = %v", bad, err)
		}
	}
	for _, ok := range []string{nsA, "a", "Z9"} {
		if err := CheckNamespace(ok); err != nil {
			t.Errorf("CheckNamespace(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../etc", "a/b", "-x", "did:key:z6Mk", "a b", "ns\n", strings.Repeat("a", MaxNamespaceLen+1), "é"} {
		if err := CheckNamespace(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckNamespace(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", "-x", "HEAD", "a..b", "a b", "x.lock", "a/", "@{u}", "--upload-pack=evil"} {
		if err := checkBranch(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkBranch(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", "-", "--output=/tmp/x", "HEAD~1", "main", "refs/heads/../x", "ext::sh -c evil"} {
		if err := checkRev(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkRev(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", "-u", "--upload-pack=x", "mega://a\nb"} {
		if err := checkURL(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkURL(%q) = %v", bad, err)
		}
	}
}

// TestValidationBeforeGit uses a Runner whose git does not exist: every
// bad argument must be refused with ErrInvalid before anything is started
// (a start would fail with a different error).
func TestValidationBeforeGit(t *testing.T) {
	r := &Runner{Bin: filepath.Join(t.TempDir(), "no-such-git")}
	b := &Bare{Dir: t.TempDir(), r: r}
	ctx := ctxT(t)
	good := strings.Repeat("ab", 20)
	badOIDs := []string{"HEAD", "-x", "--all", strings.ToUpper(good), "../" + good[:37]}
	badRefs := []string{"refs/heads/../x", "-x", "refs/heads/-x/..", "HEAD", "refs/heads/a b", "refs/heads/x.lock", "refs/heads/a\x00b"}
	badNS := []string{"../etc", "", "a/b", "-x", "ns;rm"}
	dir := t.TempDir()

	var calls []func() error
	for _, o := range badOIDs {
		calls = append(calls,
			func() error { _, err := b.HasObjects(ctx, []string{good, o}); return err },
			func() error { _, err := b.PackObjects(ctx, []string{o}, nil, io.Discard, PackOptions{}); return err },
			func() error {
				_, err := b.PackObjects(ctx, []string{good}, []string{o}, io.Discard, PackOptions{})
				return err
			},
			func() error { return b.Connected(ctx, []string{good, o}) },
			func() error { return b.UpdateRefs(ctx, nsA, nil, []Ref{{"refs/heads/main", o}}) },
			func() error { return b.UpdateRefs(ctx, nsA, []Ref{{"refs/heads/main", o}}, nil) },
			func() error { _, err := r.RootCommit(ctx, dir, o); return err },
		)
	}
	for _, name := range badRefs {
		calls = append(calls,
			func() error { return b.UpdateRefs(ctx, nsA, nil, []Ref{{name, good}}) },
			func() error { return b.UpdateRefs(ctx, nsA, []Ref{{name, good}}, nil) },
			func() error { _, err := r.RootCommit(ctx, dir, name); return err },
		)
	}
	for _, ns := range badNS {
		calls = append(calls,
			func() error { _, err := b.Refs(ctx, ns); return err },
			func() error { _, err := b.Import(ctx, dir, ns); return err },
			func() error { return b.UpdateRefs(ctx, ns, nil, []Ref{{"refs/heads/main", good}}) },
			func() error { return b.SetHEAD(ctx, ns, "main") },
			func() error { _, err := b.HEAD(ctx, ns); return err },
			func() error { return b.CloneTo(ctx, ns, filepath.Join(dir, "c"), "mega://x", "main", nil) },
			func() error { _, err := b.PullInto(ctx, ns, dir); return err },
		)
	}
	calls = append(calls,
		func() error { return b.SetHEAD(ctx, nsA, "-x") },
		func() error { return b.SetHEAD(ctx, nsA, "../../x") },
		func() error {
			return b.CloneTo(ctx, nsA, filepath.Join(dir, "c"), "--upload-pack=touch /tmp/pwned", "main", nil)
		},
		func() error { return b.CloneTo(ctx, nsA, filepath.Join(dir, "c"), "mega://x", "-b", nil) },
		func() error { return b.CloneTo(ctx, nsA, "", "mega://x", "main", nil) },
		func() error { _, err := r.InitBare(ctx, ""); return err },
		func() error { _, _, err := r.IsRepo(ctx, ""); return err },
		func() error {
			return b.UpdateRefs(ctx, nsA, nil, []Ref{{"refs/heads/a", good}, {"refs/heads/a", good}})
		},
	)
	for i, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("call %d: %v, want ErrInvalid", i, err)
		}
	}
	// The same Runner fails differently once arguments pass.
	if _, err := b.HasObjects(ctx, []string{good}); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("HasObjects with a missing git = %v", err)
	}
}
