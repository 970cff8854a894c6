// Package ws is the hub's websocket transport: it upgrades a request to
// a websocket and serves the connection as one hub.Session, carrying the
// device's frames to the hub and the session's frames to the device.
//
// The api package answers /api/v1/ws: it authenticates the request (the
// token and its sign-in) and calls Server.Serve, and turns a refusal into
// the contract's error body. What the frames mean is decided elsewhere:
// subscriptions, catch-up and presence by the hub, commands by the Service
// the server is given (the API, which carries a command out by the
// declaration its REST route is made from too). The package is an adapter between the hub and the
// websocket library (github.com/coder/websocket), as redisbroker is
// between the broker and Redis: the hub knows only its Transport
// interface and does not import it, and it knows no HTTP route.
//
// # A connection and its goroutines
//
// An idle connection costs one goroutine, the reader, which only reads
// (its stack stays small, and nothing it waits for keeps it from
// answering pings). The rest runs on goroutines that exist only while
// they have work (package lazy):
//
//   - the frames goroutine handles the frames read, in order: it decodes
//     them, applies the rate limits and carries out subscribe,
//     unsubscribe, presence and ping; up to 16 frames wait for it, then
//     the reader waits (and the device's frames wait in its socket);
//   - the commands goroutine carries out commands one at a time, so that
//     a slow store holds back neither subscriptions nor keep-alive; up to
//     64 wait for it, and more are refused with rate_limited;
//   - the session's writer (in the hub) hands the queued frames to
//     WriteFrame.
//
// Keep-alive pings come from one wheel per Server, with a slot every
// 100 ms and one goroutine that runs while there are connections; a new
// connection is first pinged after 90 to 100% of PingEvery, and a device
// that does not answer within PingTimeout is disconnected.
//
// # Writes
//
// The frames that wait together are gathered into one buffer, borrowed
// from a pool while they are written, and go out in one write call with
// WriteTimeout as its deadline; a connection itself keeps 128 bytes to
// write and 256 to read. The gathering writer follows the frame headers
// in the bytes it is given, so that pings, pongs and close frames go out
// at once, never held behind gathered frames.
//
// # Limits
//
// Every resource a device can make the server hold is bounded (Config):
// sockets per instance and per user (counted before the upgrade: 503 and
// 429), the size of a frame (1009 past it), malformed frames (a policy
// violation after MaxBadFrames), each kind of frame per second (a
// rate_limited error frame), and the rooms one connection follows. A
// connection ends with StatusTokenExpired when its token expires, with
// StatusSignedOut when its sign-in is ended, with 1008 when it sends
// commands faster than it reads their answers, and with 1001 when the
// hub shuts down.
package ws
