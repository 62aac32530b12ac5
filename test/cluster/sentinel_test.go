package cluster

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/test/fixture"
)

// TestGatewayOnRedisSentinel runs two gateway instances on a Sentinel set, each with its own
// failover client: login, identity on both, revocation refused by the other instance within a
// second, and the same after a Sentinel failover to the replica.
func TestGatewayOnRedisSentinel(t *testing.T) {
	sentinelAddr, master := fixture.StartRedisSentinel(t)
	d := deploy(t, deployOptions{n: 2, client: sentinelClients(sentinelAddr, master)})
	ctx := context.Background()

	t.Run("login, request and revoke", func(t *testing.T) {
		testLoginRevoke(t, d)
	})

	t.Run("sessions survive a failover", func(t *testing.T) {
		client, rec := d.Login(t, "alice")
		raw := fixture.NewRedisSentinelClient(sentinelAddr, master)
		defer raw.Close()
		if n, err := raw.Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 { // on the replica
			t.Fatalf("WAIT 1 = %d, %v", n, err)
		}
		failover(t, sentinelAddr, master)
		deadline := time.Now().Add(10 * time.Second) // the clients follow +switch-master
		for i, g := range d.Instances {
			for {
				resp, _ := fixture.Do(t, client, http.MethodGet, g.URL+"/after-failover", map[string]string{"Accept": "application/json"})
				if resp.StatusCode == http.StatusOK {
					break
				}
				if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
					t.Fatalf("instance %d after failover: %d", i, resp.StatusCode)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got, _ := d.Echo.Last(); got.Header.Get("X-Auth-User-Id") != rec.UserID {
				t.Errorf("instance %d after failover: wrong identity", i)
			}
		}
		testLoginRevoke(t, d)
	})
}

// testLoginRevoke: a session made on instance 0 is served with its identity by both; listed;
// revoked through instance 1's store, it is refused by both within a second.
func testLoginRevoke(t *testing.T, d *deployment) {
	t.Helper()
	client, rec := d.Login(t, "bob")
	for i, g := range d.Instances {
		resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/x", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: %d %s", i, resp.StatusCode, body)
		}
		if got, _ := d.Echo.Last(); got.Header.Get("X-Auth-User-Id") != rec.UserID {
			t.Errorf("instance %d sent X-Auth-User-Id %q, want %q", i, got.Header.Get("X-Auth-User-Id"), rec.UserID)
		}
	}
	list, err := d.Instances[1].Sessions.ListSubject(context.Background(), rec.Issuer, rec.Subject)
	if err != nil || !slices.Contains(handlesOf(list), rec.Handle) {
		t.Errorf("ListSubject misses the session (err %v)", err)
	}
	if err := d.Instances[1].Sessions.Revoke(context.Background(), rec.Handle); err != nil {
		t.Fatal(err)
	}
	d.expectRefused(t, client, time.Now())
}

// failover makes the Sentinel promote the replica and waits (15s at most) until it names the
// new master. Then it does to the old master what the Sentinel does when it reconfigures it
// (at its next check, up to 10s later): REPLICAOF the new master and CLIENT KILL of normal and
// pub/sub clients. Until then a write that reached the old master would be lost, and a
// subscription there would miss invalidations (bounded by CacheTTL): that window is
// Redis Sentinel's, documented in docs/sessions.md. The clients must follow +switch-master:
// the old master now answers writes with READONLY.
func failover(t *testing.T, sentinelAddr, master string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr})
	defer sc.Close()
	old, err := sc.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Failover(ctx, master).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	for {
		cur, err := sc.GetMasterAddrByName(ctx, master).Result()
		if err == nil && !slices.Equal(cur, old) {
			t.Logf("failover: master %v -> %v", old, cur)
			oc := redis.NewClient(&redis.Options{Addr: old[0] + ":" + old[1]})
			defer oc.Close()
			if err := oc.ReplicaOf(ctx, cur[0], cur[1]).Err(); err != nil {
				t.Fatalf("REPLICAOF on the old master: %v", err)
			}
			for _, typ := range []string{"normal", "pubsub"} {
				if err := oc.Do(ctx, "CLIENT", "KILL", "TYPE", typ, "SKIPME", "yes").Err(); err != nil {
					t.Fatalf("CLIENT KILL TYPE %s on the old master: %v", typ, err)
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no new master within 15s (still %v, %v)", cur, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
