#!/usr/bin/env bash
# The whole test suite: brings up the real Redis, registry and images (scripts/testenv.sh, quick
# when they are already up), then vets and runs every test against them, then fuzzes the
# webhook intake (its conversion, and the whole handler with raw headers), and its decoder
# against the GitLab client's, for a bounded time each.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"
go vet ./...
go test -count=1 -timeout 25m ./... "$@"
# -fuzzminimizetime: minimising each new input for the default minute would eat the budget.
# The budget is a count of inputs (about 30 s here), not a duration: with a duration, Go 1.26's
# fuzzing coordinator can fail a target with a bare "context deadline exceeded" as the time ends
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
for target in FuzzIntake FuzzHandler FuzzDecodeMatchesClient; do
	go test ./webhook -run '^$' -fuzz "^$target\$" -fuzztime "${GANTRY_FUZZTIME:-300000x}" -fuzzminimizetime 2s
done
