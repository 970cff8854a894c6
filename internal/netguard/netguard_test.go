package netguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"dealroom"
	"dealroom/internal/netguard"
)

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},
	} {
		if got := netguard.Public(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("Public(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
}

func TestCheckURL(t *testing.T) {
	strict := netguard.New(netguard.Config{})
	for _, raw := range []string{
		"http://push.example.com/x",          // not https
		"https://127.0.0.1/x",                // loopback
		"https://10.0.0.8/x",                 // private
		"https://169.254.169.254/latest",     // link-local, cloud metadata
		"https://[::1]:8443/x",               // IPv6 loopback
		"https://[::ffff:127.0.0.1]/x",       // mapped loopback
		"https://user:pw@push.example.com/x", // credentials
		"/relative",
		"mailto:a@example.com",
		"https:///nohost",
	} {
		_, err := strict.CheckURL("endpoint", raw)
		if dealroom.ErrorCode(err) != dealroom.EINVALID {
			t.Errorf("CheckURL(%q) = %v, want invalid", raw, err)
		}
	}
	if _, err := strict.CheckURL("endpoint", "https://push.example.com/x"); err != nil {
		t.Errorf("a public https URL: %v", err)
	}
	allow, err := netguard.ParseAllow("127.0.0.1, 10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	open := netguard.New(netguard.Config{Allow: allow})
	for _, raw := range []string{"https://127.0.0.1:9/x", "https://10.9.8.7/x"} {
		if _, err := open.CheckURL("endpoint", raw); err != nil {
			t.Errorf("CheckURL(%q) with the allow-list: %v", raw, err)
		}
	}
	if _, err := open.CheckURL("endpoint", "https://192.168.0.1/x"); err == nil {
		t.Error("an address the allow-list does not name passed")
	}
	if _, err := netguard.ParseAllow("127.0.0.1,nonsense"); err == nil {
		t.Error("ParseAllow took a word")
	}
}

// TestClient dials real servers on loopback: refused without the
// allow-list (by address and by a name that resolves to it), reached with
// it, and a redirect is answered as it is.
func TestClient(t *testing.T) {
	hits := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "https://169.254.169.254/latest/meta-data", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig

	get := func(g *netguard.Guard, url string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		return res, err
	}
	strict := netguard.New(netguard.Config{TLS: tlsCfg})
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for _, url := range []string{srv.URL + "/x", "https://localhost" + port + "/x", "https://[::1]" + port + "/x",
		"https://10.0.0.1" + port + "/x", "https://169.254.169.254" + port + "/x"} {
		if _, err := get(strict, url); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET %s without the allow-list: %v, want refused", url, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the server was reached %d times", hits)
	}

	allow, _ := netguard.ParseAllow("127.0.0.1")
	g := netguard.New(netguard.Config{Allow: allow, TLS: tlsCfg})
	res, err := get(g, srv.URL+"/x")
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("GET with the allow-list: %v %v", res, err)
	}
	res, err = get(g, srv.URL+"/redirect")
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("a redirect: %v %v, want the 302 itself", res, err)
	}
	if hits != 2 {
		t.Fatalf("the server was reached %d times, want 2", hits)
	}
	if _, err := get(g, strings.Replace(srv.URL, "https:", "http:", 1)+"/x"); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("plain http: %v, want refused", err)
	}
}
