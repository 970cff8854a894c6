package main

import (
	"log/slog"

	"dealroom/room"
	"dealroom/staff"
)

// staffOf returns the service accounts and staff directory kept by the
// store beside the rooms (both stores keep them), nil for a store that
// keeps none.
func staffOf(st room.Store, log *slog.Logger) *staff.Service {
	if ss, ok := st.(staff.Store); ok {
		return &staff.Service{Store: ss, Log: log}
	}
	return nil
}
