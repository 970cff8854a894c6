// Command centrifuge-ref is the reference server of dealroom-bench: the
// fan-out alone, built on the Centrifuge library, that stores nothing.
// dealroom-bench -target centrifuge measures it with the same client code
// as Dealroom, so that both can be set side by side (run.sh vs).
//
//	centrifuge-ref -addr 127.0.0.1:8000 -secret $DEALROOM_JWT_SECRET
//
// It serves:
//
//	GET  /api/v1/ws                      Centrifuge's websocket transport (JSON protocol)
//	POST /api/v1/rooms/{room}/messages   {"body": ...}: publishes to the channel {room}
//	GET  /readyz, /metrics               as Dealroom does; centrifuge_ref_ws_sessions
//	                                     counts the connections
//
// A device authenticates as it does on Dealroom, with the HS256 token in
// the Authorization header of the upgrade (or in the connect command), then
// subscribes to a channel named after the room; any authenticated user may
// subscribe. A write is a REST request, as above, or the RPC "message.post"
// with {"room": ..., "body": ...} over the websocket; both publish through
// the in-memory broker, without history, and answer once it is published.
// This is a bench program: it checks no membership and keeps no events.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		log.Fatalln("centrifuge-ref:", err)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("centrifuge-ref", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	secret := fs.String("secret", os.Getenv("DEALROOM_JWT_SECRET"), "HS256 secret of the tokens ($DEALROOM_JWT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("-secret (or DEALROOM_JWT_SECRET) is required")
	}
	v := verifier{secret: []byte(*secret), now: time.Now}

	node, err := centrifuge.New(centrifuge.Config{
		LogLevel: centrifuge.LogLevelError,
		LogHandler: func(e centrifuge.LogEntry) {
			log.Printf("centrifuge: %s %v", e.Message, e.Fields)
		},
	})
	if err != nil {
		return err
	}
	s := &server{node: node, verify: v}
	node.OnConnecting(s.connecting)
	node.OnConnect(s.connect)
	if err := node.Run(); err != nil {
		return err
	}

	// Centrifuge's own gauge of clients is updated once a minute; the
	// bench checks the count right after connecting.
	prometheus.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "centrifuge_ref_ws_sessions", Help: "Websocket sessions connected now.",
	}, func() float64 { return float64(node.Hub().NumClients()) }))

	mux := http.NewServeMux()
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin: func(*http.Request) bool { return true }, // the bench sends no Origin
	})
	mux.Handle("GET /api/v1/ws", s.authenticate(ws))
	mux.HandleFunc("POST /api/v1/rooms/{room}/messages", s.postMessage)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /metrics", promhttp.Handler())
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return node.Shutdown(sctx)
}

// server holds the node and the token check.
type server struct {
	node   *centrifuge.Node
	verify verifier
}

// authenticate reads the token of the upgrade request, as Dealroom does,
// and hands the user to Centrifuge as its credentials. A request without
// a token goes on: the connect command may carry one.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			user, err := s.verify.subject(tok)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			r = r.WithContext(centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: user}))
		}
		next.ServeHTTP(w, r)
	})
}

// connecting accepts a connect command that carries a valid token. One
// without a token is accepted when the upgrade was authenticated.
func (s *server) connecting(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
	if e.Token == "" {
		if _, ok := centrifuge.GetCredentials(ctx); ok {
			return centrifuge.ConnectReply{}, nil
		}
		return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
	}
	user, err := s.verify.subject(e.Token)
	if err != nil {
		return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
	}
	return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: user}}, nil
}

// connect sets the handlers of one connection: any channel may be
// subscribed, and the RPC message.post publishes.
func (s *server) connect(c *centrifuge.Client) {
	c.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
		cb(centrifuge.SubscribeReply{}, nil)
	})
	c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
		if e.Method != "message.post" {
			cb(centrifuge.RPCReply{}, centrifuge.ErrorMethodNotFound)
			return
		}
		var in struct {
			Room string `json:"room"`
			Body string `json:"body"`
		}
		if json.Unmarshal(e.Data, &in) != nil || in.Room == "" {
			cb(centrifuge.RPCReply{}, centrifuge.ErrorBadRequest)
			return
		}
		if err := s.publish(in.Room, c.UserID(), in.Body); err != nil {
			cb(centrifuge.RPCReply{}, centrifuge.ErrorInternal)
			return
		}
		cb(centrifuge.RPCReply{Data: []byte(`{}`)}, nil)
	})
}

// postMessage is the REST write: the bench's writers use the same path
// on both servers.
func (s *server) postMessage(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, err := s.verify.subject(tok)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var in struct {
		Body string `json:"body"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if err := s.publish(r.PathValue("room"), user, in.Body); err != nil {
		http.Error(w, "publish failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{}`))
}

// message is the publication's data: the fields of a Dealroom message
// event that a device would show, without a seq (nothing is stored).
type message struct {
	Type   string    `json:"type"`
	Room   string    `json:"room"`
	Author string    `json:"author"`
	At     time.Time `json:"at"`
	Data   struct {
		Body string `json:"body"`
	} `json:"data"`
}

func (s *server) publish(room, user, body string) error {
	m := message{Type: "message.posted", Room: room, Author: user, At: time.Now().UTC()}
	m.Data.Body = body
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.node.Publish(room, data)
	return err
}

// verifier checks the HS256 tokens that dealroom-bench signs with the
// server's secret: signature, algorithm and expiry.
type verifier struct {
	secret []byte
	now    func() time.Time
}

var b64 = base64.RawURLEncoding

// subject returns the token's user (its "sub" claim) when the token is
// valid.
func (v verifier) subject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("malformed token")
	}
	var head struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &head); err != nil || head.Alg != "HS256" {
		return "", errors.New("the token's algorithm is not HS256")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return "", errors.New("malformed signature")
	}
	mac := hmac.New(sha256.New, v.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", errors.New("bad signature")
	}
	var claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := decodePart(parts[1], &claims); err != nil || claims.Sub == "" {
		return "", errors.New("the token has no subject")
	}
	if claims.Exp == 0 || v.now().Unix() >= claims.Exp {
		return "", errors.New("the token has expired")
	}
	return claims.Sub, nil
}

func decodePart(s string, v any) error {
	b, err := b64.DecodeString(s)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("token part: %w", err)
	}
	return nil
}
