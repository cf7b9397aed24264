package gc

import (
	"runtime/debug"
	"testing"
)

func TestTune(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got, want := Tune(getenv), "GOGC=400 GOMEMLIMIT=2048MiB"; got != want {
		t.Errorf("Tune with no environment = %q, want %q", got, want)
	}

	// What the environment sets stays: the runtime read it at start (simulated here).
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(64 << 20)
	env["GOGC"], env["GOMEMLIMIT"] = "50", "64MiB"
	if got, want := Tune(getenv), "GOGC=50 GOMEMLIMIT=64MiB"; got != want {
		t.Errorf("Tune with GOGC and GOMEMLIMIT set = %q, want %q", got, want)
	}
}
