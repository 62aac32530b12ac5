//go:build !race

package faults

// raceEnabled reports whether the race detector is on (figures are then far below production).
const raceEnabled = false
