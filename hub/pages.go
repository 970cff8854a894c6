package hub

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// pageCache shares the store reads of catch-up: events are read in fixed
// pages (page n holds the seqs n*size+1 ... (n+1)*size), a page is read
// once however many sessions want it at the same time, and full pages,
// which never change, are kept (least recently used go first) within a
// count of pages and a count of bytes.
type pageCache struct {
	h        *Hub
	max      int
	maxBytes int
	mu       sync.Mutex
	bytes    int // of the pages kept
	pages    map[pageKey]*list.Element
	lru      *list.List
	inflight map[pageKey]*pageCall
}

type pageKey struct {
	room string
	n    int64
}

type cachedPage struct {
	key     pageKey
	entries []*entry
	bytes   int
}

type pageCall struct {
	done    chan struct{}
	entries []*entry
	err     error
	// stale is set (under the cache's lock) when the room's pages were
	// forgotten while this read was in flight: a message deleted
	// meanwhile may be in what it read, so it is not kept.
	stale bool
}

func newPageCache(h *Hub, max, maxBytes int) *pageCache {
	return &pageCache{h: h, max: max, maxBytes: maxBytes, pages: map[pageKey]*list.Element{}, lru: list.New(), inflight: map[pageKey]*pageCall{}}
}

// readAhead is how many pages one store read fills at most. A long
// catch-up reads its events in a few big reads (on MongoDB each read is a
// round trip, and on some servers a scan of the collection), the next
// ones while it sends what it has; a short one reads only the pages it
// needs.
const readAhead = 8

// get returns the page holding seq from. head is the last seq the caller
// is going to want: the pages after from's, up to head's, are read in the
// same store read, and read ahead while the caller sends this one
// (readAhead pages at most).
func (c *pageCache) get(ctx context.Context, room string, from, head int64) ([]*entry, error) {
	size := int64(c.h.cfg.PageSize)
	key := pageKey{room, (from - 1) / size}
	last := max(key.n, (head-1)/size) // the page of head
	c.mu.Lock()
	var call *pageCall
	el, cached := c.pages[key]
	if cached {
		c.lru.MoveToFront(el)
	} else if call = c.inflight[key]; call == nil {
		call = c.startLocked(key, last)
	}
	// Read ahead: the first of the next pages that is neither kept nor
	// being read.
	for n := key.n + 1; n <= min(last, key.n+readAhead); n++ {
		if k := (pageKey{room, n}); c.absentLocked(k) {
			c.startLocked(k, last)
			break
		}
	}
	c.mu.Unlock()
	if cached {
		return el.Value.(*cachedPage).entries, nil
	}
	select {
	case <-call.done:
		return call.entries, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// absentLocked tells whether page k is neither kept nor being read; c.mu
// is held.
func (c *pageCache) absentLocked(k pageKey) bool {
	_, kept := c.pages[k]
	_, reading := c.inflight[k]
	return !kept && !reading
}

// startLocked starts the read of page first (absent) and of the absent
// pages right after it, up to page last (readAhead pages at most; last is
// not before first), and returns the call of page first; c.mu is held.
func (c *pageCache) startLocked(first pageKey, last int64) *pageCall {
	last = min(last, first.n+readAhead-1)
	calls := make([]*pageCall, 0, last-first.n+1)
	for n := first.n; n <= last; n++ {
		k := pageKey{first.room, n}
		if n > first.n && !c.absentLocked(k) {
			break
		}
		pc := &pageCall{done: make(chan struct{})}
		c.inflight[k] = pc
		calls = append(calls, pc)
	}
	go c.load(first, calls)
	return calls[0]
}

// load reads the pages from first on, one per call, in one store read.
func (c *pageCache) load(first pageKey, calls []*pageCall) {
	size := int64(c.h.cfg.PageSize)
	ctx, cancel := context.WithTimeout(c.h.ctx, 10*time.Second)
	defer cancel()
	c.h.Stats.StoreReads.Add(1)
	evs, err := c.h.store.Events(ctx, first.room, first.n*size, int(size)*len(calls), false)
	if err == nil {
		for _, ev := range evs {
			i := (ev.Seq-1)/size - first.n
			if i < 0 || i >= int64(len(calls)) {
				continue // not asked for (a store that answers more)
			}
			calls[i].entries = append(calls[i].entries, newEntry(ev, nil))
		}
	}
	c.mu.Lock()
	for i, call := range calls {
		key := pageKey{first.room, first.n + int64(i)}
		call.err = err
		if call.stale {
			continue // forgotten meanwhile: not in c.inflight any more, and not kept
		}
		delete(c.inflight, key)
		if err == nil && int64(len(call.entries)) == size {
			p := &cachedPage{key: key, entries: call.entries}
			for _, e := range p.entries {
				p.bytes += e.size()
			}
			c.pages[key] = c.lru.PushFront(p)
			c.bytes += p.bytes
		}
	}
	for c.lru.Len() > c.max || c.lru.Len() > 0 && c.bytes > c.maxBytes {
		old := c.lru.Remove(c.lru.Back()).(*cachedPage)
		delete(c.pages, old.key)
		c.bytes -= old.bytes
	}
	c.mu.Unlock()
	for _, call := range calls {
		close(call.done)
	}
}

// forget drops the cached pages of a room (a message of it was deleted:
// the pages hold its text). The reads of the room in flight may have read
// the text before the deletion: they are marked stale, so that they keep
// nothing, and taken out of the in-flight list, so that a session that
// asks for their pages from now on reads them again.
func (c *pageCache) forget(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.pages {
		if key.room == room {
			c.lru.Remove(el)
			delete(c.pages, key)
			c.bytes -= el.Value.(*cachedPage).bytes
		}
	}
	for key, call := range c.inflight {
		if key.room == room {
			call.stale = true
			delete(c.inflight, key)
		}
	}
}
