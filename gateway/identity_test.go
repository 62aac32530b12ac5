package gateway

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

func identityRecord(handle, user string) *session.Record {
	return &session.Record{Handle: handle, UserID: user, Subject: "sub-" + user,
		Email: user + "@example.com\r\nX-Evil: 1", Name: "User\x00 " + user,
		Roles: []string{"viewer", "editor"}, Groups: []string{"staff"}, AccessToken: "at-" + user}
}

func wantIdentity(rec *session.Record) []upstream.Field {
	return []upstream.Field{
		{Name: "X-Auth-User-Id", Value: rec.UserID},
		{Name: "X-Auth-Subject", Value: rec.Subject},
		{Name: "X-Auth-Email", Value: rec.UserID + "@example.comX-Evil: 1"},
		{Name: "X-Auth-Name", Value: "User " + rec.UserID},
		{Name: "X-Auth-Roles", Value: "viewer,editor"},
		{Name: "X-Auth-Groups", Value: "staff"},
	}
}

// TestIdentityMemo checks the memoized identity fields: built like before (control bytes
// removed, roles and groups joined), reused for the same record, rebuilt for another record
// in the same slot (also an equal copy: records are told apart by pointer), and safe to
// append to (pass_access_token, X-Auth-Identity) from concurrent requests.
func TestIdentityMemo(t *testing.T) {
	var m identityMemo
	a := identityRecord("AAAAAAAAAAAAAAAAAAAAAA", "alice")
	fa := m.fields(a)
	if !reflect.DeepEqual(fa, wantIdentity(a)) {
		t.Fatalf("fields = %q", fa)
	}
	if cap(fa) != len(fa) {
		t.Fatalf("cap %d > len %d: an append would write into the memo", cap(fa), len(fa))
	}
	if again := m.fields(a); &again[0] != &fa[0] {
		t.Error("the same record's fields were built again")
	}
	b := identityRecord(a.Handle, "bob") // same slot, other record
	if got := m.fields(b); !reflect.DeepEqual(got, wantIdentity(b)) {
		t.Fatalf("other record in the slot: %q", got)
	}
	a2 := a.Clone()
	a2.Roles = []string{"admin"}
	if got := m.fields(a2); got[4].Value != "admin" {
		t.Fatalf("a copy with other roles got %q", got[4].Value)
	}
	if got := m.fields(a); !reflect.DeepEqual(got, wantIdentity(a)) {
		t.Fatalf("after the slot changed: %q", got)
	}

	g := &Gateway{}
	rt := &Route{PassAccessToken: true}
	recs := make([]*session.Record, 8)
	for i := range recs {
		recs[i] = identityRecord(fmt.Sprintf("%c%cAAAAAAAAAAAAAAAAAAAA", 'A'+i%2, 'A'), fmt.Sprintf("u%d", i))
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				rec := recs[(j+w)%len(recs)]
				h := g.identityHeaders(rec, rt)
				h = append(h, upstream.Field{Name: "X-Auth-Identity", Value: rec.UserID})
				want := append(wantIdentity(rec), upstream.Field{Name: "Authorization", Value: "Bearer at-" + rec.UserID},
					upstream.Field{Name: "X-Auth-Identity", Value: rec.UserID})
				if !reflect.DeepEqual(h, want) {
					t.Errorf("request for %s got %q", rec.UserID, h)
					return
				}
			}
		}()
	}
	wg.Wait()
}
