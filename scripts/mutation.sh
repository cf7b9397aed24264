#!/usr/bin/env bash
# Mutation testing: gremlins changes one operator at a time in each core package and runs that
# package's tests; a change no test notices is a mutant that lived. internal/mutation takes out
# the mutants listed in scripts/mutation-equivalents/PACKAGE.txt (each with why it cannot change
# behaviour), prints the ones that lived and fails when a package's test efficacy is under 90%
# or its mutator coverage under 85%. jobs and cmd are left out: their tests take minutes each.
#
#   scripts/mutation.sh                 every core package
#   scripts/mutation.sh store api       just these
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"
packages=("$@")
if ((${#packages[@]} == 0)); then
	packages=(orchestrator webhook store configs api gitlab)
fi
out=$(mktemp -d)
trap '[[ -n ${GANTRY_MUTATION_KEEP:-} ]] || rm -rf "$out"' EXIT
echo "mutation: reports in $out" >&2
go build -o "$out/gate" ./internal/mutation
failed=()
echo "| package | test efficacy (killed / covered mutants) | mutator coverage | listed equivalent |"
echo "|---|---|---|---|"
for pkg in "${packages[@]}"; do
	start=$SECONDS
	# gremlins times each mutant's tests against its coverage run: -count=1 keeps that run out
	# of Go's test cache, or every mutant would "time out" against a cached 0.1 s.
	GOFLAGS=-count=1 "$GANTRY_TEST_GREMLINS" unleash --silent --timeout-coefficient 10 --output "$out/$pkg.json" "./$pkg" >"$out/$pkg.log" 2>&1 ||
		{ cat "$out/$pkg.log" >&2; failed+=("$pkg (gremlins failed)"); continue; }
	"$out/gate" -equivalents "scripts/mutation-equivalents/$pkg.txt" "$pkg" "$out/$pkg.json" >"$out/$pkg.gate" 2>&1 || failed+=("$pkg")
	grep -v '^|' "$out/$pkg.gate" >&2 || true
	grep '^|' "$out/$pkg.gate" || true
	echo "mutation: $pkg took $((SECONDS - start)) s" >&2
done
if ((${#failed[@]} > 0)); then
	echo "mutation: under the threshold: ${failed[*]}" >&2
	exit 1
fi
