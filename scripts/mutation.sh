#!/usr/bin/env bash
# Mutation testing: gremlins changes one operator at a time in each core package and runs that
# package's tests; a change no test notices is a mutant that lived. internal/mutation takes out
# the mutants listed in scripts/mutation-equivalents/PACKAGE.txt (each with why it cannot change
# behaviour), prints the ones that lived and fails when a package's test efficacy is under 90%
# or its mutator coverage under 85%. jobs and cmd are left out: their tests take minutes each.
# gitlab/gitlabtest, the GitLab double, is left out of gitlab's run: it is test code, and the
# tests that would notice a change in it are the ones that use it, all over the tree.
#
# gremlins v0.6.0 reports the mutants of a switch case's condition NOT COVERED even when tests
# run that case (go-gremlins/gremlins#298): the gate reads the package's coverage profile and
# counts such a mutant nowhere when its case's body ran (the "unrun" column).
#
# A full run takes over an hour on two cores, too long for CI next to the tests, so it is run
# by hand; scripts/mutation-base names the commit of the last full run. --since REV mutates
# only the lines changed since REV, holds the same thresholds for those mutants and skips a
# package with no change: scripts/test.sh runs it since mutation-base, the check on a change
# before it lands.
#
#   scripts/mutation.sh                      every core package, every line
#   scripts/mutation.sh store api            just these
#   scripts/mutation.sh --since REV [PKG…]   only the lines changed since REV (gremlins --diff)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"
since=
if [[ ${1:-} == --since ]]; then
	since=${2:?--since needs a git revision}
	shift 2
	git rev-parse --verify --quiet "$since^{commit}" >/dev/null || { echo "mutation: --since $since: no such commit" >&2; exit 2; }
fi
packages=("$@")
real_git=$(command -v git)
PATH=$PWD/scripts/lib/gremlins-git:$PATH
if ((${#packages[@]} == 0)); then
	packages=(orchestrator webhook store configs api gitlab)
fi
out=$(mktemp -d)
trap '[[ -n ${GANTRY_MUTATION_KEEP:-} ]] || rm -rf "$out"' EXIT
echo "mutation: reports in $out" >&2
go build -o "$out/gate" ./internal/mutation
failed=()
echo "| package | test efficacy (killed / covered mutants) | mutator coverage | listed equivalent | unrun case conditions |"
echo "|---|---|---|---|---|"
for pkg in "${packages[@]}"; do
	start=$SECONDS
	diff=() partial=()
	if [[ -n $since ]]; then
		if "$real_git" diff --quiet "$since" -- ":(glob)$pkg/*.go" ':(exclude,glob)**/*_test.go'; then
			echo "| $pkg | no change since ${since:0:12} | | | |"
			continue
		fi
		diff=(--diff "$since") partial=(-partial)
	fi
	# scripts/lib/gremlins-git/git: how gremlins' --diff finds the changed lines of a package.
	export GANTRY_REAL_GIT=$real_git GANTRY_MUTATION_PKG=$pkg
	# gremlins times each mutant's tests against its coverage run: -count=1 keeps that run out
	# of Go's test cache, or every mutant would "time out" against a cached 0.1 s.
	exclude=()
	[[ $pkg == gitlab ]] && exclude=(--exclude-files 'gitlabtest/')
	# api's browser tests (Chromium, a few seconds each) would run for every mutant; the nobrowser
	# tag leaves them out, so a mutant in api must be caught by a test that needs no browser.
	tags=nobrowser
	GOFLAGS=-count=1 "$GANTRY_TEST_GREMLINS" unleash --silent --tags "$tags" --timeout-coefficient 10 "${exclude[@]}" "${diff[@]}" --output "$out/$pkg.json" "./$pkg" >"$out/$pkg.log" 2>&1 ||
		{ cat "$out/$pkg.log" >&2; failed+=("$pkg (gremlins failed)"); continue; }
	go test -count=1 -tags "$tags" -coverprofile "$out/$pkg.cover" "./$pkg" >"$out/$pkg.cover.log" 2>&1 ||
		{ cat "$out/$pkg.cover.log" >&2; failed+=("$pkg (coverage run failed)"); continue; }
	"$out/gate" "${partial[@]}" -equivalents "scripts/mutation-equivalents/$pkg.txt" -cover "$out/$pkg.cover" "$pkg" "$out/$pkg.json" >"$out/$pkg.gate" 2>&1 || failed+=("$pkg")
	grep -v '^|' "$out/$pkg.gate" >&2 || true
	grep '^|' "$out/$pkg.gate" || true
	echo "mutation: $pkg took $((SECONDS - start)) s" >&2
done
if ((${#failed[@]} > 0)); then
	echo "mutation: under the threshold: ${failed[*]}" >&2
	exit 1
fi
