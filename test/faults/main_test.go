package faults

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// quietRedis drops go-redis's own log lines (one per failed dial while Redis is down by
// design); the gateway's log is counted by each test's logCounter instead.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{}) // go-redis has only a process-wide logger
	os.Exit(m.Run())
}
