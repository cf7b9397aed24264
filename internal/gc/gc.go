// Package gc sets the garbage collector for gantry's processes, unless the environment does.
package gc

import (
	"fmt"
	"runtime/debug"
)

const (
	// Percent is GOGC for gantry. Its live heap is a few MiB, so with Go's default of 100 the
	// collector runs dozens of times a second under a burst of webhooks, each cycle paying a
	// fixed cost that a 2-core machine shares with Redis and the engine; 400 measured 7% more
	// webhooks per second (gantry-bench ingest).
	Percent = 400
	// MemoryLimit keeps the larger GOGC from letting a big live heap (a build context is
	// re-packed in memory, up to 512 MiB) grow five-fold: near the limit the collector runs
	// more often again. It is soft: gantry goes over it rather than fail.
	MemoryLimit = 2 << 30
)

// Tune applies Percent and MemoryLimit where GOGC and GOMEMLIMIT are not set, and says what
// is in effect.
func Tune(getenv func(string) string) string {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	percent := debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	return fmt.Sprintf("GOGC=%d GOMEMLIMIT=%dMiB", percent, limit>>20)
}
