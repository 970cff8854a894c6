package redisbroker_test

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/broker/brokertest"
	"dealroom/internal/testenv"
	"dealroom/redisbroker"
)

// clientTLS trusts the test authority of f and, with cert, shows its
// client certificate.
func clientTLS(t *testing.T, f testenv.TLSFiles, cert bool) *tls.Config {
	t.Helper()
	c, err := f.ClientConfig()
	require.NoError(t, err)
	if !cert {
		c.Certificates = nil
	}
	return c
}

// The conformance suite over TLS only, on a Redis that asks for a client
// certificate: the publisher and the subscriber connections both speak
// TLS (the URL names the TLS port alone).
func TestTLSConformance(t *testing.T) {
	s := testenv.StartRedisTLS(t, true)
	conformance(t, func(*testing.T) string { return "rediss://" + s.TLSAddr() + "/0?" },
		redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), true)))
}

func TestTLSRefusals(t *testing.T) {
	s := testenv.StartRedisTLS(t, true)
	url := "rediss://" + s.TLSAddr() + "/0"
	rec := brokertest.NewRecorder()

	_, err := redisbroker.New(ctxT(t), url, rec)
	require.Error(t, err, "the server's authority is not among the system's")
	assert.ErrorContains(t, err, "certificate")

	_, err = redisbroker.New(ctxT(t), url, rec, redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), false)))
	require.Error(t, err, "the server asks for a client certificate")
	assert.ErrorContains(t, err, "cannot reach Redis")

	_, err = redisbroker.New(ctxT(t), "redis://"+s.Addr()+"/0", rec, redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), true)))
	require.Error(t, err)
	assert.ErrorContains(t, err, "does not ask for TLS")

	other := testenv.StartRedisTLS(t, false)
	_, err = redisbroker.New(ctxT(t), "rediss://"+other.TLSAddr()+"/0", rec, redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), true)))
	require.Error(t, err, "another authority's server")
	assert.ErrorContains(t, err, "certificate")

	b := open(t, "rediss://"+other.TLSAddr()+"/0", rec, redisbroker.WithTLS(clientTLS(t, other.TLSFiles(), false)))
	assert.NoError(t, b.Ping(ctxT(t)), "a server that asks for no client certificate")
}

// The conformance suite on a Redis Cluster over TLS alone: the seeds are
// the nodes' TLS ports, the nodes tell a TLS client their TLS ports, and
// every connection, to any node, shows the client certificate.
func TestClusterTLSConformance(t *testing.T) {
	c := testenv.StartRedisClusterTLS(t)
	conformance(t, func(*testing.T) string { return c.TLSURL() + "&" },
		redisbroker.WithTLS(clientTLS(t, c.TLSFiles(), true)))
}

// The conformance suite on the master of a Sentinel setup over TLS alone:
// the sentinels, asked over TLS, name the master's TLS port, and the
// broker shows its client certificate to each.
func TestSentinelTLSConformance(t *testing.T) {
	s := testenv.StartRedisSentinelTLS(t)
	conformance(t, func(*testing.T) string { return s.URL() + "&" },
		redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), true)))
}
