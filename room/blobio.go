package room

import (
	"context"
	"io"
)

// ContextReader returns a reader of r that stops, with ctx's error, once
// ctx ends: a Blobs.Put reading an upload from a client that went away
// stops at its next read instead of storing the rest.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
