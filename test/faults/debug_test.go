package faults

import (
	"testing"
	"time"
)

func logBuckets(t *testing.T, samples []sample) {
	for b := time.Duration(0); b < 20*time.Second; b += 500 * time.Millisecond {
		var in []sample
		for _, s := range samples {
			if s.start >= b && s.start < b+500*time.Millisecond {
				in = append(in, s)
			}
		}
		if len(in) > 0 {
			t.Logf("%v: max %v %s", b, maxLatency(in), tally(in))
		}
	}
}
