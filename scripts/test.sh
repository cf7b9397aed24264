#!/usr/bin/env bash
# The whole test suite: brings up the real Redis, registry and images (scripts/testenv.sh, quick
# when they are already up), then vets and runs every test against them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"
go vet ./...
go test -count=1 -timeout 25m ./... "$@"
