package broker_test

import (
	"testing"

	"dealroom/broker"
	"dealroom/broker/brokertest"
)

func TestBus(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) func(h broker.Handler) broker.Broker {
		bus := broker.NewBus()
		return func(h broker.Handler) broker.Broker { return bus.Connect(h) }
	})
}
