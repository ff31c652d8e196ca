package fstree

import (
	"context"
	"sync/atomic"
)

// Progress counts what a long tree operation has done so far; its owner reads it to
// report progress (operation metadata). A nil *Progress counts nothing.
type Progress struct {
	files, bytes atomic.Int64
}

// AddFile counts one entry.
func (p *Progress) AddFile() {
	if p != nil {
		p.files.Add(1)
	}
}

// AddBytes counts n bytes of file data.
func (p *Progress) AddBytes(n int64) {
	if p != nil {
		p.bytes.Add(n)
	}
}

// Counts returns the entries and data bytes done.
func (p *Progress) Counts() (files, bytes int64) {
	if p == nil {
		return 0, 0
	}

	return p.files.Load(), p.bytes.Load()
}

type progressKey struct{}

// WithProgress returns a context carrying p, so that deep callees count into it.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressFrom returns the Progress of ctx, or nil.
func ProgressFrom(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}
