//go:build !unix || aix

package upstream

// peekIdle cannot look at the socket here (Windows; AIX has no MSG_DONTWAIT): a connection closed by the peer is found when a
// request fails on it (and is retried), unsolicited bytes only when still buffered.
func peekIdle(uintptr) bool { return true }
