package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service plays a push service (RFC 8030) on 127.0.0.1 over TLS, for one
// test: it takes the messages posted to its devices' endpoints, checks
// their VAPID authorization (RFC 8292: the JWT's ES256 signature with the
// key it names, its audience, expiry and subject) and decrypts them as a
// browser would (RFC 8291, aes128gcm), with the device's private key and
// authentication secret. The decryption is written here from the RFCs,
// not taken from the library that encrypts.
type Service struct {
	srv *httptest.Server

	mu       sync.Mutex
	devices  map[string]*Device
	received []Message
	answers  map[string][]int // per device: the statuses of its next answers
}

// Device is a browser's subscription at the service: what the browser
// keeps (its private key and secret) and what it hands the server.
type Device struct {
	ID       string
	Endpoint string
	P256dh   string // the public key, unpadded base64url
	Auth     string // the secret, unpadded base64url
	key      *ecdh.PrivateKey
	secret   []byte
}

// Message is one request the service took, checked and decrypted.
type Message struct {
	Device string
	Status int // what the service answered
	Header http.Header
	// Plain is the decrypted payload.
	Plain []byte
	// VAPID is what the Authorization header said, once verified.
	VAPID VAPID
	// Err is what was wrong with the request: a bad signature, a payload
	// that does not decrypt. Nil for a good one.
	Err error
}

// VAPID is a verified VAPID authorization.
type VAPID struct {
	Key string // the k= parameter: the sender's public key
	Aud string
	Sub string
	Exp time.Time
}

// StartService starts the service; it stops with the test.
func StartService(t testing.TB) *Service {
	s := &Service{devices: map[string]*Device{}, answers: map[string][]int{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// TLS is the client configuration that trusts the service's certificate.
func (s *Service) TLS() *tls.Config {
	return s.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// CertificatePEM is the service's certificate, PEM-encoded: what a
// server given it as a trusted authority accepts.
func (s *Service) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// URL is the service's base URL (https://127.0.0.1:port).
func (s *Service) URL() string { return s.srv.URL }

// NewDevice registers a device, with keys made as a browser makes them.
func (s *Service) NewDevice(t testing.TB) *Device {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "d" + strconv.Itoa(len(s.devices)+1)
	d := &Device{ID: id, Endpoint: s.srv.URL + "/push/" + id, key: k, secret: secret,
		P256dh: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(secret)}
	s.devices[id] = d
	return d
}

// Answer makes the device's next answers these statuses (410: the
// subscription is gone; 429, 503: try later), one per request; 201 after.
func (s *Service) Answer(d *Device, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[d.ID] = append(s.answers[d.ID], statuses...)
}

// Received returns the messages posted to the device, in order.
func (s *Service) Received(d *Device) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.received {
		if m.Device == d.ID {
			out = append(out, m)
		}
	}
	return out
}

// All returns every message the service took.
func (s *Service) All() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.received...)
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/push/")
	s.mu.Lock()
	d := s.devices[id]
	s.mu.Unlock()
	if !ok || d == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	m := Message{Device: id, Header: r.Header.Clone(), Status: http.StatusCreated}
	if err == nil {
		m.VAPID, err = verifyVAPID(r.Header.Get("Authorization"))
	}
	if err == nil {
		if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
			err = fmt.Errorf("Content-Encoding %q, want aes128gcm", ce)
		}
	}
	if err == nil {
		m.Plain, err = Decrypt(d, body)
	}
	m.Err = err
	s.mu.Lock()
	if a := s.answers[id]; len(a) > 0 {
		m.Status, s.answers[id] = a[0], a[1:]
	}
	if m.Err != nil && m.Status == http.StatusCreated {
		m.Status = http.StatusBadRequest
	}
	s.received = append(s.received, m)
	n := len(s.received)
	s.mu.Unlock()
	w.Header().Set("Location", s.srv.URL+"/message/"+strconv.Itoa(n))
	w.WriteHeader(m.Status)
}

// Decrypt opens an aes128gcm message (RFC 8188) encrypted for the device
// by RFC 8291: the header (salt, record size, the sender's key), then one
// record.
func Decrypt(d *Device, body []byte) ([]byte, error) {
	if len(body) < 16+4+1 {
		return nil, errors.New("the body is shorter than its header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("the key id is %d bytes, want the sender's 65-byte public key", idlen)
	}
	asPublic, ciphertext := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ciphertext)) > rs || len(ciphertext) < 17 {
		return nil, fmt.Errorf("want one record of at most %d bytes, got %d", rs, len(ciphertext))
	}
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("the sender's key: %w", err)
	}
	shared, err := d.key.ECDH(as)
	if err != nil {
		return nil, err
	}
	// RFC 8291 3.3: combine the shared secret with the auth secret.
	prkKey, err := hkdf.Extract(sha256.New, shared, d.secret)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), d.key.PublicKey().Bytes()...), asPublic...)
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, err
	}
	// RFC 8188 2.2 and 2.3: the content key and the nonce.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil) // the first record: sequence number 0
	if err != nil {
		return nil, fmt.Errorf("the record does not decrypt: %w", err)
	}
	// The last record ends with the delimiter 2, then zero padding.
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("the record has no last-record delimiter")
	}
	return plain[:end], nil
}

// verifyVAPID checks an Authorization header "vapid t=<JWT>, k=<key>"
// (RFC 8292 3): the JWT is ES256 and signed by the key k names.
func verifyVAPID(h string) (VAPID, error) {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return VAPID{}, fmt.Errorf("Authorization %q is not vapid", h)
	}
	var token, key string
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return VAPID{}, fmt.Errorf("k: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return VAPID{}, fmt.Errorf("k: %w", err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return VAPID{}, errors.New("t is not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &header); err != nil || header.Alg != "ES256" {
		return VAPID{}, fmt.Errorf("the JWT's alg is %q, want ES256 (%v)", header.Alg, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return VAPID{}, errors.New("the JWT's signature is not 64 bytes")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return VAPID{}, errors.New("the JWT's signature does not verify with k")
	}
	var claims struct {
		Aud string `json:"aud"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return VAPID{}, err
	}
	return VAPID{Key: key, Aud: claims.Aud, Sub: claims.Sub, Exp: time.Unix(claims.Exp, 0)}, nil
}

func decodePart(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
