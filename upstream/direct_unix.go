//go:build unix && !aix

package upstream

import "syscall"

// peekIdle reports whether the idle socket fd may carry a request: the peer has not closed it
// and it holds no unread bytes (an upstream that sent more than the response asked for). One
// non-blocking MSG_PEEK recv; it consumes nothing.
func peekIdle(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return true // nothing to read: idle and open
		}
		return false // read 0 (closed by the peer) or 1 (unsolicited bytes), or an error
	}
}
