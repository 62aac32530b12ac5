//go:build race

package upstream

// raceEnabled: the race detector drops sync.Pool items at random, which adds allocations.
const raceEnabled = true
