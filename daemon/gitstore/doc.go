// Package gitstore is the daemon's only way to run git (DESIGN D5).
//
// Git is always the git binary, started with os/exec and an explicit argument
// list (never a shell), a sanitized environment and a timeout; cancelling the
// context kills the whole process group, so helpers that git starts die too.
// Nothing that arrives from the network becomes an argument unless it has
// been validated first: object ids must be 40 or 64 lowercase hex digits
// (CheckOID), ref names must pass wire.CheckRefName, namespaces must be
// alphanumeric (CheckNamespace), and paths are made absolute so that no
// value can start with '-' and be taken for an option. Invalid input is
// rejected with ErrInvalid before any process starts.
//
// Two kinds of repository are handled:
//
//   - the user's working repositories, read (WorkRefs, DefaultBranch,
//     RootCommit, IsRepo) with the sanitized environment, and written
//     (Bare.CloneTo, Bare.PullInto) with the user's own environment minus the
//     variables that redirect git to another repository, so the user's name,
//     e-mail and merge settings apply;
//   - the daemon's bare replicas, one per repository (Bare), in which every
//     node's refs live in their own namespace refs/namespaces/<ns>/refs/….
//
// Replication moves thin packs: Bare.PackObjects writes what the wants need
// and the haves lack (bitmaps off, so small updates are deltas against what
// the receiver holds); Bare.IndexPack stores a received pack with
// index-pack --fix-thin --strict and leaves nothing behind when the stream is
// cut or bad; Bare.Connected checks that new tips are complete; and
// Bare.UpdateRefs applies the new refs in one all-or-nothing transaction.
//
// Errors from git name the command and carry the tail of its stderr, as in
// "git index-pack: fatal: early EOF" (see Error).
package gitstore
