package session

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestNewRedisRefusesReplicaReads: a Cluster client that may route reads to replicas is
// refused (a lagging replica would serve revoked sessions); others are accepted. No Redis is
// contacted.
func TestNewRedisRefusesReplicaReads(t *testing.T) {
	seeds := []string{"127.0.0.1:1"}
	tests := []struct {
		name    string
		client  redis.UniversalClient
		refused bool
	}{
		{name: "single node", client: redis.NewClient(&redis.Options{Addr: seeds[0]})},
		{name: "cluster, masters only", client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds})},
		{name: "cluster, read_only", client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, ReadOnly: true}), refused: true},
		{name: "cluster, route_by_latency", client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, RouteByLatency: true}), refused: true},
		{name: "cluster, route_randomly", client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, RouteRandomly: true}), refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.client.Close()
			st, err := NewRedis(tt.client, Options{Secrets: [][]byte{secretA()}, CookieName: "s", CacheTTL: -1})
			if tt.refused {
				if !errors.Is(err, errReplicaReads) {
					t.Fatalf("NewRedis = %v, want errReplicaReads", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRedis: %v", err)
			}
			_ = st.Close()
		})
	}
}
