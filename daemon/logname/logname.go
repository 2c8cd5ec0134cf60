// Package logname names nodes and repositories in the daemon's log lines.
//
// identity.NodeID and identity.RepoID are slog.LogValuers that log their
// short forms, so a service logs an id as it is ("peer", p.ID) and a whole
// 56-character did never reaches a log line. Wrap makes a logger that also
// says what people recognise, looked up when a line is written: a node's
// alias from the routing table, "bob (…Zq7oMMsw)", and a repository's name,
// "tiny (zW1hkhoxv1iB…)". Lines the level drops cost no lookup.
package logname

import (
	"context"
	"log/slog"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Lookup finds the names log lines show; "" when none is known.
type Lookup interface {
	Alias(identity.NodeID) string
	RepoName(identity.RepoID) string
}

// Wrap returns a logger writing to l's handler that renders every
// identity.NodeID and identity.RepoID attribute, also inside groups and in
// attributes added with Logger.With (looked up when With is called), by
// Node and Repo with the names look finds.
func Wrap(l *slog.Logger, look Lookup) *slog.Logger {
	return slog.New(&handler{next: l.Handler(), look: look})
}

// Node renders a node: "alias (…short)", or the short id alone when the
// alias is unknown.
func Node(id identity.NodeID, alias string) string { return named(alias, id.Short()) }

// Repo renders a repository: "name (short…)", or the short id alone when
// the name is unknown.
func Repo(id identity.RepoID, name string) string { return named(name, id.Short()) }

func named(name, short string) string {
	if name == "" {
		return short
	}
	return name + " (" + short + ")"
}

type handler struct {
	next slog.Handler
	look Lookup
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.name(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	named := make([]slog.Attr, len(as))
	for i, a := range as {
		named[i] = h.name(a)
	}
	return &handler{next: h.next.WithAttrs(named), look: h.look}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), look: h.look}
}

// name renders a as people read it if it holds an id.
func (h *handler) name(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindLogValuer:
		switch id := a.Value.Any().(type) {
		case identity.NodeID:
			return slog.String(a.Key, Node(id, h.look.Alias(id)))
		case identity.RepoID:
			return slog.String(a.Key, Repo(id, h.look.RepoName(id)))
		}
	case slog.KindGroup:
		g := a.Value.Group()
		named := make([]slog.Attr, len(g))
		for i, ga := range g {
			named[i] = h.name(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(named...)}
	}
	return a
}
