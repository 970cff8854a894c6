package redisbroker

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/broker"
)

func TestWireRoundTrip(t *testing.T) {
	long := string(bytes.Repeat([]byte("o"), 300)) // a two-byte length
	for _, m := range []broker.Message{
		{Room: "r1", Kind: broker.Event, Origin: "inst-1", Data: []byte(`{"seq":1}`)},
		{Room: "r1", Kind: broker.Presence, Origin: "", Data: []byte{}},
		{Room: "r1", Kind: broker.Kind(255), Origin: long, Data: []byte("\x00\xff\n\r\x01binary")},
		{Room: "", Kind: 0, Origin: "\x00", Data: []byte("\x00")},
	} {
		p := encode(m)
		got, err := decode(m.Room, string(p))
		require.NoError(t, err)
		assert.Equal(t, m.Room, got.Room)
		assert.Equal(t, m.Kind, got.Kind)
		assert.Equal(t, m.Origin, got.Origin)
		assert.Equal(t, string(m.Data), string(got.Data))
		assert.NotNil(t, got.Data)
	}
}

func TestWireLayout(t *testing.T) {
	p := encode(broker.Message{Room: "r", Kind: broker.Presence, Origin: "ab", Data: []byte("xyz")})
	assert.Equal(t, []byte{1, 2, 2, 'a', 'b', 'x', 'y', 'z'}, p)
}

func TestWireMalformed(t *testing.T) {
	for name, p := range map[string]string{
		"empty":             "",
		"version only":      "\x01",
		"no origin length":  "\x01\x01",
		"unknown version":   "\x02\x01\x00data",
		"version zero":      "\x00\x01\x00",
		"origin overruns":   "\x01\x01\x05abc",
		"truncated varint":  "\x01\x01\x80",
		"overlong varint":   "\x01\x01\x80\x00",
		"varint overflow":   "\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"huge origin":       "\x01\x01\xff\xff\xff\xff\x0f",
		"text, not payload": `{"seq":1}`,
	} {
		_, err := decode("r", p)
		assert.Error(t, err, name)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(broker.Message{Kind: broker.Event, Origin: "i", Data: []byte("{}")}))
	f.Add([]byte("\x01\x01\x80\x00"))
	f.Add([]byte("\x01\x02\x05abc"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decode("room", string(p))
		if err != nil {
			return
		}
		// What decodes is canonical: it encodes back to the same bytes.
		if got := encode(m); !bytes.Equal(got, p) {
			t.Fatalf("decode(%q) = %+v encodes to %q", p, m, got)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(1), "inst", []byte("data"))
	f.Add(uint8(0), "", []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, origin string, data []byte) {
		m := broker.Message{Room: "r", Kind: broker.Kind(kind), Origin: origin, Data: data}
		got, err := decode("r", string(encode(m)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != m.Kind || got.Origin != m.Origin || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("got %+v, want %+v", got, m)
		}
	})
}
