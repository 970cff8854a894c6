// Package ws is the websocket transport of the hub: it upgrades an
// authenticated request (/api/v1/ws) and carries a hub.Session's frames
// between the device and the hub. The api package authenticates the
// request and hands it over; the hub decides what each device receives.
package ws
