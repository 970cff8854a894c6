package redisbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"dealroom/broker"
)

// wireVersion is the first byte of every payload. A subscriber ignores
// payloads of a version it does not know, so a new format can be rolled out
// by publishing it only once every instance reads it.
const wireVersion = 1

// encode returns m's payload: the version byte, the kind byte, the length of
// the origin as a uvarint, the origin, and the data up to the end. The room
// is not in the payload: it is the channel's name.
func encode(m broker.Message) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(m.Origin)+len(m.Data))
	b = append(b, wireVersion, byte(m.Kind))
	b = binary.AppendUvarint(b, uint64(len(m.Origin)))
	b = append(b, m.Origin...)
	return append(b, m.Data...)
}

var errShort = errors.New("payload too short")

// decode parses a payload received on room's channel. Only the canonical
// encoding (as made by encode) is accepted.
func decode(room, p string) (broker.Message, error) {
	if len(p) < 3 {
		return broker.Message{}, errShort
	}
	if p[0] != wireVersion {
		return broker.Message{}, fmt.Errorf("unknown format version %d", p[0])
	}
	var head [binary.MaxVarintLen64]byte
	k := copy(head[:], p[2:])
	n, k := binary.Uvarint(head[:k])
	if k <= 0 {
		return broker.Message{}, errors.New("bad origin length")
	}
	if k != uvarintLen(n) {
		return broker.Message{}, errors.New("origin length not minimally encoded")
	}
	rest := p[2+k:]
	if n > uint64(len(rest)) {
		return broker.Message{}, fmt.Errorf("origin length %d overruns the payload", n)
	}
	return broker.Message{
		Room:   room,
		Kind:   broker.Kind(p[1]),
		Origin: strings.Clone(rest[:n]), // not pinning the whole payload
		Data:   []byte(rest[n:]),
	}, nil
}

func uvarintLen(n uint64) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}
