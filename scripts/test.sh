#!/usr/bin/env bash
# The whole test suite: brings up the real Redis, registry and images (scripts/testenv.sh, quick
# when they are already up), then vets and runs every test against them, then fuzzes the
# webhook intake (its conversion, and the whole handler with raw headers), and its decoder
# against the GitLab client's, for a bounded time each. Then it brings the production compose
# stack up from nothing and drives a pipeline through it (scripts/compose-smoke.sh). Last,
# mutation testing of the code changed since the last full mutation run (scripts/mutation.sh
# --since the commit in scripts/mutation-base): a full run takes over an hour, see the README.
#
#   GANTRY_QUICK=1 scripts/test.sh    the tests and the fuzzing only, for a developer's loop
set -euo pipefail
cd "$(dirname "$0")/.."

# phase LIMIT NAME COMMAND…: runs one step under a hard time limit and says how long it took. A
# step that hangs (an engine that stops answering, a fuzzing coordinator that never returns:
# golang/go#46634) then fails the run with its name, well inside CI's budget, instead of
# holding the whole run until CI gives up on it without a word. `timeout` signals the step's
# whole process group, so test binaries and the programs they started go too.
phase() {
	local limit=$1 name=$2 start=$SECONDS rc=0
	shift 2
	printf 'test.sh: %s (limit %s)\n' "$name" "$limit" >&2
	timeout --kill-after=30s "$limit" "$@" || rc=$?
	if [[ $rc == 124 || $rc == 137 ]]; then
		printf 'test.sh: %s did not finish within %s\n' "$name" "$limit" >&2
	fi
	printf 'test.sh: %s: exit %d after %d s\n' "$name" "$rc" $((SECONDS - start)) >&2
	return "$rc"
}

phase 20m "test environment" scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"
phase 10m "go vet" go vet ./...
phase 28m "go test" go test -count=1 -timeout 25m ./... "$@"
# -fuzzminimizetime: minimising each new input for the default minute would eat the budget.
# The budget is a count of inputs (about a minute here), not a duration: with a duration, Go
# 1.26's fuzzing coordinator can fail a target with a bare "context deadline exceeded" as the
# time ends (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
for target in FuzzIntake FuzzHandler FuzzDecodeMatchesClient; do
	phase 8m "fuzz $target" go test ./webhook -run '^$' -fuzz "^$target\$" \
		-fuzztime "${GANTRY_FUZZTIME:-300000x}" -fuzzminimizetime 2s
done
[[ ${GANTRY_QUICK:-} == 1 ]] && exit 0
phase 15m "compose smoke" scripts/compose-smoke.sh
base=$(<scripts/mutation-base)
phase 15m "mutation since ${base:0:12}" scripts/mutation.sh --since "$base"
printf 'test.sh: all passed in %d s\n' "$SECONDS" >&2
