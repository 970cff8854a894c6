package api

import (
	"context"

	"dealroom"
	"dealroom/hub"
)

// commands are the websocket commands, by name: the operations (ops.go).
var commands = func() map[string]operation {
	m := make(map[string]operation, len(operations))
	for _, o := range operations {
		m[o.opName()] = o
	}
	return m
}()

// command carries out a command frame of a websocket session and returns
// its answer frame.
func (s *Server) command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte {
	o, ok := commands[f.Op]
	if !ok {
		return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid("op", "unknown op %q", dealroom.Clip(f.Op)))
	}
	return o.command(ctx, s, a, f)
}
