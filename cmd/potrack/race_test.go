//go:build race

package main

// The race detector multiplies memory 5-10× and slows every goroutine: the
// flood tests scale their bounds and counts by it.
const raceEnabled = true
