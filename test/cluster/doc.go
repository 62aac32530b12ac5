// Package cluster tests authgate's Redis deployments beyond a single server: a real local Redis
// Cluster (6 nodes, 3 masters) and a Sentinel set (master, replica, Sentinel), both started by
// package fixture. It checks that sessions, login flows, locks, revocations (by handle, user,
// IdP session and subject), listings, cross-instance cache invalidation, token refresh and
// identity-JWT keys work there with no CROSSSLOT error, and that `authgate check-config` and
// `authgate serve` accept the Cluster and Sentinel URL forms.
//
// Run with: go test -race ./test/cluster/ (needs redis-server and redis-cli in $PATH; skipped
// without them, failed when CI is set).
package cluster
