//go:build !unix

package upstream

// peekIdle cannot look at the socket here: a connection closed by the peer is found when a
// request fails on it (and is retried), unsolicited bytes only when still buffered.
func peekIdle(uintptr) bool { return true }
