// Package rpc is the contract between the MegaEngine daemon (med) and the
// tools that control it (mecli, git-remote-mega, editor plugins): JSON-RPC 2.0
// over the unix socket $ROOT/med.sock (DESIGN.md D9).
//
// It holds
//
//   - the method table (methods.go): every method's name, whether it reads
//     or changes the node, and a one-line summary (mecli's help is made
//     from it);
//   - one file per method family, holding its param and result types with
//     their JSON form, the handlers that check params before the daemon
//     sees them, and the typed [Client] methods: node.go (node.*),
//     events.go (events.subscribe and its notifications), repo.go (repo.*);
//   - the progress notifications of long calls (progress.go);
//   - the [Service] the daemon implements, and what a handler sees of a
//     call (service.go);
//   - the error codes (errors.go), stable across versions;
//   - the server (server.go), which serves a Service on a listener made by
//     [Listen] (socket.go), which refuses to start beside a live daemon and
//     replaces a stale socket file, and encodes every result the same way:
//     a nil slice anywhere in it is sent as [] (result.go);
//   - the framing (framing.go): newline-delimited JSON, or LSP-style
//     Content-Length headers for editors, detected per connection, with every
//     message capped before it is allocated ([MaxRequestSize]);
//   - the client's plumbing (client.go): dialing, the generic [Client.Call],
//     errors.
//
// The package imports nothing heavy: not the daemon, not badger, not quic-go,
// so the tools that import it stay small and start fast. spec/rpc.md is the
// normative description of the protocol; its examples are checked by this
// package's tests.
//
// Adding a method is one entry in the method table (see methodTable), a
// section in spec/rpc.md, and usually a method on [Service] and on [Client]
// in the file of its family.
package rpc
