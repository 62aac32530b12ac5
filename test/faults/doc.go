// Package faults tests authgate under failure and load: Redis stopped, restarted and slow,
// Postgres unreachable during logins, the IdP down or answering garbage, upstreams refusing,
// resetting, hanging and streaming without end, abusive clients (slowloris, huge headers,
// thousands of cookies) against the real `authgate serve` binary, and a bounded load test.
//
// Every test drives a bounded load client (loopback only, bounded in requests and time) before,
// during and after the fault, and an upstream that checks every request it receives: each must
// carry the identity headers of a live test session, so a request let through without a valid
// session fails the test. Recovery times, latencies, goroutines and heap are measured.
//
// Faults are made with private tools from package fixture (a redis-server subprocess, a TCP
// proxy that cuts, stalls or slows a link); the machine's shared Redis and Postgres are never
// stopped. Run with: go test -race -count=1 ./test/faults/ (about two minutes on two cores, of
// which TestLoad, at the scale of issue 9, takes 40 to 50 s).
//
// Environment: the load test's shape, by default 10,000 sessions, 200 workers and two phases of
// 15s: AUTHGATE_LOAD_SESSIONS, AUTHGATE_LOAD_WORKERS and AUTHGATE_LOAD_DURATION (a Go duration,
// per phase); AUTHGATE_LOAD_REPORT names a file that receives its figures as Markdown;
// AUTHGATE_STREAM_MIB sets the size of the streamed body (default 500); AUTHGATE_BIN names an
// authgate binary to use instead of building one for the client-abuse tests.
package faults
