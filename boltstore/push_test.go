package boltstore_test

import (
	"testing"

	"dealroom/push"
	"dealroom/push/pushtest"
)

func TestPush(t *testing.T) {
	pushtest.TestStore(t, func(tb testing.TB) push.Store { return MustOpen(tb, tb.TempDir()) })
}
