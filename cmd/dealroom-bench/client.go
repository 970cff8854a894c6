package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"dealroom"
	"dealroom/jwtauth"
)

// client speaks the REST API of one server.
type client struct {
	base string // http://host:port
	hc   *http.Client
}

func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // the servers are local: never a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// apiError is a refused request.
type apiError struct {
	Status int
	Code   string
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Msg)
}

// statusOf returns the HTTP status of a failed request, 0 for a transport
// failure.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path, token, idemKey string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Msg: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// doRetry is do for the set-up, which must not fail on the rate limit or
// a busy server: it retries 429 and 503 (with the same idempotency key,
// so nothing is written twice) and transport errors, for up to a minute.
func (c *client) doRetry(ctx context.Context, method, path, token, idemKey string, in, out any) error {
	deadline := time.Now().Add(time.Minute)
	wait := 200 * time.Millisecond
	for {
		err := c.do(ctx, method, path, token, idemKey, in, out)
		st := statusOf(err)
		if err == nil || (st != 0 && st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable) ||
			ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// roomHead returns the room's head seq as the server says.
func (c *client) roomHead(ctx context.Context, token, roomID string) (int64, error) {
	var r struct {
		Head int64 `json:"head"`
	}
	err := c.doRetry(ctx, http.MethodGet, "/api/v1/rooms/"+url.PathEscape(roomID), token, "", nil, &r)
	return r.Head, err
}

// lastEventSeq reads the room's timeline after `after` and returns the
// highest seq there, with how many events there were: a second opinion on
// the head, from GET /rooms/{room}/events.
func (c *client) lastEventSeq(ctx context.Context, token, roomID string, after int64) (last int64, n int, err error) {
	last = after
	for {
		var page struct {
			Items []struct {
				Seq int64 `json:"seq"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		path := "/api/v1/rooms/" + url.PathEscape(roomID) + "/events?limit=1000&after=" + strconv.FormatInt(last, 10)
		if err := c.doRetry(ctx, http.MethodGet, path, token, "", nil, &page); err != nil {
			return last, n, err
		}
		for _, it := range page.Items {
			last = max(last, it.Seq)
			n++
		}
		if len(page.Items) == 0 || page.NextCursor == "" {
			return last, n, nil
		}
	}
}

// readyz waits until the server answers /readyz with 200.
func (c *client) readyz(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
		resp, err := c.hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready: %w", c.base, err)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// minter signs tokens with the server's HS256 secret, one per user id,
// cached.
type minter struct {
	keys *jwtauth.Keys
	mu   sync.Mutex
	toks map[string]string
}

func newMinter(secret string) (*minter, error) {
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(secret)})
	if err != nil {
		return nil, err
	}
	return &minter{keys: keys, toks: map[string]string{}}, nil
}

func (m *minter) token(id string, role dealroom.Role) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.toks[id]; ok {
		return t
	}
	t, err := m.keys.Issue(dealroom.Actor{ID: id, Name: id, Kind: dealroom.Staff, Role: role}, 12*time.Hour)
	if err != nil {
		panic(err) // only a bad configuration fails, and New checked it
	}
	m.toks[id] = t
	return t
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
loop:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}
