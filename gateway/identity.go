package gateway

import (
	"strings"
	"sync/atomic"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// identityFields is the number of identity headers every session request carries.
const identityFields = 6

// identitySlots is the size of identityMemo (a power of two).
const identitySlots = 64

// identityMemo remembers the identity header fields of recently served session records, by
// record pointer: a record served from the session cache is the same *session.Record for
// every request of that session within the cache TTL (and never modified, see
// session.Store.Load), so its fields are built once per cache fill rather than per request.
// A record that is not in a slot costs what building the fields always cost (one allocation).
//
// A slot holds its record, so the record cannot be freed and its address reused while the
// slot names it: pointer equality means the same record. At most identitySlots records are
// kept alive beyond their cache entries (the slots are overwritten as other sessions come).
type identityMemo struct {
	slots [identitySlots]atomic.Pointer[identityEntry]
}

// identityEntry is one record's fields; never modified once stored.
type identityEntry struct {
	rec    *session.Record
	fields [identityFields]upstream.Field
}

// fields returns the identity header fields of rec: X-Auth-User-Id, -Subject, -Email, -Name,
// -Roles and -Groups. The slice may be shared: the caller must not modify its elements
// (append is fine: its capacity is its length, so append copies).
func (m *identityMemo) fields(rec *session.Record) []upstream.Field {
	slot := &m.slots[slotOf(rec.Handle)]
	if e := slot.Load(); e != nil && e.rec == rec {
		return e.fields[:]
	}
	e := &identityEntry{rec: rec, fields: [identityFields]upstream.Field{
		{Name: "X-Auth-User-Id", Value: rec.UserID},
		{Name: "X-Auth-Subject", Value: rec.Subject},
		{Name: "X-Auth-Email", Value: cleanHeaderValue(rec.Email)},
		{Name: "X-Auth-Name", Value: cleanHeaderValue(rec.Name)},
		{Name: "X-Auth-Roles", Value: strings.Join(rec.Roles, ",")},
		{Name: "X-Auth-Groups", Value: strings.Join(rec.Groups, ",")},
	}}
	slot.Store(e)
	return e.fields[:]
}

// slotOf picks a slot from a session handle (base64url of a SHA-256: its characters are
// uniformly spread).
func slotOf(handle string) int {
	h := 0
	if len(handle) >= 2 {
		h = int(handle[0])*31 + int(handle[1])
	}
	return h & (identitySlots - 1)
}
