package ws

import (
	"sync"
	"time"
)

// pinger sends the keep-alive pings of every connection from one
// goroutine, instead of a timer per connection: connections are spread
// over the slots of a wheel that turns once per PingEvery, a slot every
// 100 ms, and the goroutine runs only while there are connections.
// A new connection goes to one of the slots pinged last, in turn over the
// last tenth of the wheel: its first ping comes after 90 to 100% of the
// interval, and a thousand devices that connect at once (a deploy, a
// network coming back) are pinged a few dozen at a time, not all in the
// same instant.
type pinger struct {
	every time.Duration

	mu      sync.Mutex
	slots   []map[*conn]struct{}
	cur     int // the slot pinged at the next tick
	turn    int // counts connections, to spread them
	n       int
	running bool
}

const pingTick = 100 * time.Millisecond

func (p *pinger) add(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots == nil {
		p.slots = make([]map[*conn]struct{}, max(1, int(p.every/pingTick)))
	}
	n := len(p.slots)
	i := (p.cur - 1 - p.turn%max(1, n/10) + 2*n) % n
	p.turn++
	if p.slots[i] == nil {
		p.slots[i] = map[*conn]struct{}{}
	}
	p.slots[i][c] = struct{}{}
	c.pingSlot = i
	p.n++
	if !p.running {
		p.running = true
		go p.run()
	}
}

func (p *pinger) remove(c *conn) {
	p.mu.Lock()
	if _, ok := p.slots[c.pingSlot][c]; ok {
		delete(p.slots[c.pingSlot], c)
		p.n--
	}
	p.mu.Unlock()
}

func (p *pinger) run() {
	p.mu.Lock()
	t := time.NewTicker(p.every / time.Duration(len(p.slots)))
	p.mu.Unlock()
	defer t.Stop()
	var due []*conn
	for range t.C {
		p.mu.Lock()
		if p.n == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		for c := range p.slots[p.cur] {
			due = append(due, c)
		}
		p.cur = (p.cur + 1) % len(p.slots)
		p.mu.Unlock()
		for i, c := range due {
			go c.ping()
			due[i] = nil
		}
		due = due[:0]
	}
}
