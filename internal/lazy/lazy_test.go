package lazy

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// running tells whether q's goroutine runs.
func (q *Queue[T]) running() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.runner.Running()
}

// waitIdle returns once q's goroutine has ended.
func waitIdle[T any](q *Queue[T]) {
	for q.running() {
		runtime.Gosched()
	}
}

// TestQueueOneGoroutineInOrder: items put from many goroutines are each
// handled once, one at a time, each producer's in the order it put them;
// and once they are all handled no goroutine is left.
func TestQueueOneGoroutineInOrder(t *testing.T) {
	const producers, each = 8, 500
	var (
		busy    atomic.Int32
		overlap atomic.Bool
		mu      sync.Mutex
		got     = map[int][]int{}
		done    sync.WaitGroup
	)
	done.Add(producers * each)
	q := &Queue[[2]int]{Limit: 16, Wait: true, Handle: func(_ context.Context, it [2]int) {
		if busy.Add(1) > 1 {
			overlap.Store(true)
		}
		mu.Lock()
		got[it[0]] = append(got[it[0]], it[1])
		mu.Unlock()
		busy.Add(-1)
		done.Done()
	}}
	var put sync.WaitGroup
	for p := range producers {
		put.Add(1)
		go func() {
			defer put.Done()
			for i := range each {
				assert.True(t, q.Put([2]int{p, i}))
			}
		}()
	}
	put.Wait()
	done.Wait()
	assert.False(t, overlap.Load(), "two handlers ran at once")
	for p := range producers {
		require.Len(t, got[p], each)
		for i, v := range got[p] {
			require.Equal(t, i, v, "producer %d's items out of order", p)
		}
	}
	// The goroutine ends once it finds the queue empty, after the last
	// Handle returned.
	waitIdle(q)
	assert.Nil(t, q.items, "an idle queue holds no backing array")
}

// TestQueueFullRefuses: without Wait, a full queue refuses the item, and
// takes items again once the handler took some.
func TestQueueFullRefuses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int, 10)
	q := &Queue[int]{Limit: 2, Handle: func(_ context.Context, i int) {
		started <- i
		<-release
	}}
	require.True(t, q.Put(1))
	assert.Equal(t, 1, <-started, "the first item is being handled")
	assert.True(t, q.Put(2))
	assert.True(t, q.Put(3))
	assert.False(t, q.Put(4), "two wait already")
	release <- struct{}{}
	assert.Equal(t, 2, <-started)
	assert.True(t, q.Put(5), "there is room again")
	close(release)
	assert.Equal(t, 3, <-started)
	assert.Equal(t, 5, <-started)
}

// TestQueueStop: Stop cancels the running handler's context, drops the
// items that wait, wakes a Put that waits for room and refuses later ones.
func TestQueueStop(t *testing.T) {
	started := make(chan int, 10)
	q := &Queue[int]{Limit: 1, Wait: true, Handle: func(ctx context.Context, i int) {
		started <- i
		<-ctx.Done()
	}}
	require.True(t, q.Put(1))
	<-started
	require.True(t, q.Put(2)) // waits behind 1
	waiting := make(chan bool)
	go func() { waiting <- q.Put(3) }() // waits for room
	q.Stop()
	assert.False(t, <-waiting, "a Put that waited is refused")
	assert.False(t, q.Put(4))
	q.Stop() // twice is harmless
	// The handler of 1 returns once its context is cancelled, and the
	// goroutine ends without handling 2.
	waitIdle(q)
	select {
	case i := <-started:
		t.Fatalf("item %d was handled after Stop", i)
	default:
	}
}
