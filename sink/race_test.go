//go:build race

package sink

// raceEnabled reports whether the tests run under the race detector, which
// makes the parquet writer much slower; large tests write fewer rows then.
const raceEnabled = true
