//go:build !race

package bench

// raceEnabled: the race detector drops sync.Pool items at random, which adds allocations.
const raceEnabled = false
