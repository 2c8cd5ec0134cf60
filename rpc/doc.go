// Package rpc is the contract between the MegaEngine daemon (med) and the
// tools that control it (mecli, git-remote-mega, editor plugins): JSON-RPC 2.0
// over the unix socket $ROOT/med.sock (DESIGN.md D9).
//
// It holds
//
//   - the method table (methods.go): method names, whether each one reads or
//     changes the node, and the param and result types with their JSON form;
//   - the error codes (errors.go), stable across versions;
//   - the server (server.go), which serves a [Service] — the interface the
//     daemon implements — on a listener made by [Listen] (socket.go), which
//     refuses to start beside a live daemon and replaces a stale socket file;
//   - the framing (framing.go): newline-delimited JSON, or LSP-style
//     Content-Length headers for editors, detected per connection, with every
//     message capped before it is allocated ([MaxRequestSize]);
//   - a typed client (client.go) for the Go tools.
//
// The package imports nothing heavy: not the daemon, not badger, not quic-go,
// so the tools that import it stay small and start fast. spec/rpc.md is the
// normative description of the protocol; its examples are checked by this
// package's tests.
//
// Adding a method is one entry in the method table (see methodTable), a
// section in spec/rpc.md, and usually a method on [Service] and on [Client].
package rpc
