package api

import (
	"context"
	"time"

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
	start := time.Now()
	o, ok := commands[f.Op]
	var ack []byte
	var err error
	if ok {
		ack, err = o.command(ctx, s, a, f)
	} else {
		err = dealroom.Invalid("op", "unknown op %q", dealroom.Clip(f.Op))
	}
	if s.metrics != nil {
		op := f.Op
		if !ok {
			op = "unknown"
		}
		s.metrics.observeCommand(op, dealroom.PublicOf(err).Code, time.Since(start))
	}
	if err != nil {
		return hub.ErrorFrame(f.ID, f.Room, err)
	}
	return ack
}
