// Package log carries a *slog.Logger in a context. Only cmd/ chooses the
// handler and level; packages call From(ctx) and never configure logging.
package log

import (
	"context"
	"log/slog"
)

type ctxKey struct{}

// From returns the logger in ctx, or slog.Default() when there is none.
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// WithLogger returns a context carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// With returns a context whose logger has the given attributes added.
func With(ctx context.Context, args ...any) context.Context {
	return WithLogger(ctx, From(ctx).With(args...))
}

// Shared attribute keys, so logs grep well across packages.
const (
	KeyContainer = "container"
	KeyImage     = "image"
	KeyDigest    = "digest"
	KeySnapshot  = "snapshot"
	KeyPath      = "path"
	KeyPID       = "pid"
	KeyNetns     = "netns"
	KeyRequest   = "req"
	KeyErr       = "err"
)
