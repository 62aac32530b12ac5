// Package scale tests authgate with several gateway instances on one Redis: sessions and
// revocations shared by every instance, exactly one token refresh per session under concurrent
// load, sessions ended by a refused refresh or by OIDC Back-Channel Logout, and identity
// assertions (X-Auth-Identity) that upstreams verify with /.auth/jwks.json.
//
// The tests use the real packages, a real Redis, the devidp OP or a CraftedOP, and the echo
// upstream from package fixture. Run them with: go test -race ./test/scale/
package scale
