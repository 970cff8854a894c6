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
// which never change, are kept (least recently used go first).
type pageCache struct {
	h        *Hub
	max      int
	mu       sync.Mutex
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
}

type pageCall struct {
	done    chan struct{}
	entries []*entry
	err     error
}

func newPageCache(h *Hub, max int) *pageCache {
	return &pageCache{h: h, max: max, pages: map[pageKey]*list.Element{}, lru: list.New(), inflight: map[pageKey]*pageCall{}}
}

// get returns the page holding seq from.
func (c *pageCache) get(ctx context.Context, room string, from int64) ([]*entry, error) {
	size := int64(c.h.cfg.PageSize)
	key := pageKey{room, (from - 1) / size}
	c.mu.Lock()
	if el, ok := c.pages[key]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*cachedPage).entries, nil
	}
	call, ok := c.inflight[key]
	if !ok {
		call = &pageCall{done: make(chan struct{})}
		c.inflight[key] = call
		go c.load(key, call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.entries, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *pageCache) load(key pageKey, call *pageCall) {
	size := c.h.cfg.PageSize
	ctx, cancel := context.WithTimeout(c.h.ctx, 10*time.Second)
	defer cancel()
	c.h.Stats.StoreReads.Add(1)
	evs, err := c.h.store.Events(ctx, key.room, key.n*int64(size), size, false)
	if err == nil {
		call.entries = make([]*entry, len(evs))
		for i, ev := range evs {
			call.entries[i] = newEntry(ev, nil)
		}
	}
	call.err = err
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil && len(evs) == size {
		c.pages[key] = c.lru.PushFront(&cachedPage{key: key, entries: call.entries})
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*cachedPage)
			delete(c.pages, old.key)
		}
	}
	c.mu.Unlock()
	close(call.done)
}

// forget drops the cached pages of a room.
func (c *pageCache) forget(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.pages {
		if key.room == room {
			c.lru.Remove(el)
			delete(c.pages, key)
		}
	}
}
