#!/usr/bin/env bash
# compose-smoke.sh: the production stack of docker-compose.yml (Redis with AOF, `gantry server`,
# `gantry worker`) brought up on this machine and driven through one pipeline, then torn down.
#
#   scripts/compose-smoke.sh
#
# Nothing is pulled (the engine here cannot): the gantry binary is built on the host
# (CGO_ENABLED=0), a minbase Debian bookworm rootfs made by debootstrap is imported as
# gantry-smoke/debian:bookworm (built once, kept by tag), Redis is Debian's redis-server on that
# base (gantry-smoke/redis:bookworm, kept by tag), and gantry's image is deploy/smoke/gantry.Dockerfile
# on that base with the host-built binary (rebuilt every run). deploy/smoke/docker-compose.smoke.yml
# names those images for the stack.
#
# Then TestComposeSmoke (cmd/gantry/compose_smoke_test.go, skipped unless GANTRY_COMPOSE_SMOKE=1)
# starts the GitLab double with a busybox project, writes the gantry config and the .env the
# stack reads, runs `docker-compose up`, sends a push webhook to the server's published port and
# waits until the double holds success statuses and the test registry holds the released image.
#
# Whatever happens, the stack's containers, networks and volumes are removed on exit, and the
# time it all took is printed. Needs root (debootstrap, the first time), Go, docker-compose v1
# and the test environment (scripts/testenv.sh up, which this runs).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

BASE_IMAGE=gantry-smoke/debian:bookworm
REDIS_IMAGE=gantry-smoke/redis:bookworm
GANTRY_IMAGE=gantry-smoke/gantry:latest

start=$SECONDS
log() { printf 'compose-smoke: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

command -v docker-compose >/dev/null 2>&1 || die "docker-compose (v1) is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers"

work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-smoke.XXXXXX")
# The stack: the production file and the smoke's override, under a project name of this run's
# own, so a teardown removes exactly what this run created.
export COMPOSE_FILE=$repo/docker-compose.yml:$repo/deploy/smoke/docker-compose.smoke.yml
export COMPOSE_PROJECT_NAME=gantry-smoke-$$
# The worker joins the group that owns the socket (docker-compose.yml's group_add).
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID

# shellcheck source=scripts/lib/debian.sh
. "$repo/scripts/lib/debian.sh"

compose() {
	local env=()
	[[ -s $work/smoke.env ]] && env=(--env-file "$work/smoke.env")
	docker-compose "${env[@]}" "$@"
}

teardown() {
	local rc=$? label=com.docker.compose.project=$COMPOSE_PROJECT_NAME ids
	trap - EXIT INT TERM
	set +e
	if [[ $rc != 0 ]] && [[ -n $(docker ps -aq --filter "label=$label") ]]; then
		log "failed (exit $rc): the stack's logs"
		compose ps >&2
		compose logs --no-color --tail 150 >&2
	fi
	log "tearing down $COMPOSE_PROJECT_NAME"
	compose down --volumes --remove-orphans --timeout 30 2>&1 | sed 's/^/  /' >&2
	# Whatever docker-compose could not remove (it stops at a broken file or variable), by label.
	ids=$(docker ps -aq --filter "label=$label")
	[[ -n $ids ]] && docker rm -f -v $ids >/dev/null
	ids=$(docker network ls -q --filter "label=$label")
	[[ -n $ids ]] && docker network rm $ids >/dev/null
	ids=$(docker volume ls -q --filter "label=$label")
	[[ -n $ids ]] && docker volume rm $ids >/dev/null
	# The job containers and the app's local images (TestComposeSmoke names the GitLab project and
	# the image after the compose project): an interrupted test does not get to remove them.
	ids=$(docker ps -aq --filter "label=gantry.project=group/$COMPOSE_PROJECT_NAME")
	[[ -n $ids ]] && docker rm -f -v $ids >/dev/null
	ids=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "/$COMPOSE_PROJECT_NAME/")
	[[ -n $ids ]] && docker rmi -f $ids >/dev/null
	remove_root "${debootstrap_root:-}"
	rm -rf "$work"
	if [[ $rc == 0 ]]; then
		log "PASS in $((SECONDS - start)) s"
	else
		log "FAIL (exit $rc) after $((SECONDS - start)) s"
	fi
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- test environment

scripts/testenv.sh up
eval "$(scripts/testenv.sh env)"

# ---------------------------------------------------------------- images

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# build_image TAG DOCKERFILE CONTEXT [docker build flags…]: build, tag, and remove the image the
# tag named before, so repeated runs leave no untagged images behind.
build_image() {
	local tag=$1 file=$2 ctx=$3 old new
	shift 3
	old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
	if ! DOCKER_BUILDKIT=0 docker build -q -f "$file" --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$tag" "$@" "$ctx" \
		>/dev/null 2>"$work/build.log"; then
		cat "$work/build.log" >&2
		die "building $tag failed"
	fi
	new=$(docker image inspect -f '{{.Id}}' "$tag")
	if [[ -n $old && $old != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

t=$SECONDS
log "building the gantry binary (CGO_ENABLED=0)"
mkdir -p "$work/ctx"
CGO_ENABLED=0 go build -trimpath -o "$work/ctx/gantry" ./cmd/gantry
cp configs/gantry.example.yaml "$work/ctx/"
log "binary built in $((SECONDS - t)) s"

if image_exists "$BASE_IMAGE"; then
	log "image $BASE_IMAGE: present"
else
	t=$SECONDS
	log "image $BASE_IMAGE: debootstrap --variant=minbase bookworm from $(debian_mirror) (about a minute)"
	debootstrap_image "$BASE_IMAGE" '["bash"]' "$work" "$work/debootstrap.log" ca-certificates || die "debootstrap failed"
	log "image $BASE_IMAGE: built in $((SECONDS - t)) s"
fi

if image_exists "$REDIS_IMAGE"; then
	log "image $REDIS_IMAGE: present"
else
	t=$SECONDS
	log "image $REDIS_IMAGE: installing Debian's redis-server on $BASE_IMAGE"
	build_image "$REDIS_IMAGE" deploy/smoke/redis.Dockerfile deploy/smoke --network host
	log "image $REDIS_IMAGE: built in $((SECONDS - t)) s"
fi

t=$SECONDS
build_image "$GANTRY_IMAGE" deploy/smoke/gantry.Dockerfile "$work/ctx"
log "image $GANTRY_IMAGE: built in $((SECONDS - t)) s"

# ---------------------------------------------------------------- one pipeline through the stack

# The GitLab double listens on 127.0.0.1 of the host; the test puts a forwarder for it on the
# host's address that host-gateway stands for (the override maps host.docker.internal to it),
# asked of the engine the way the stack's containers get it.
GANTRY_COMPOSE_SMOKE_HOST_IP=$(docker run --rm --network none --add-host gantry-host:host-gateway \
	"$GANTRY_TEST_BUSYBOX_IMAGE" awk '$2 == "gantry-host" {print $1; exit}' /etc/hosts)
[[ -n $GANTRY_COMPOSE_SMOKE_HOST_IP ]] || die "the engine maps host-gateway to no address"
log "host-gateway is $GANTRY_COMPOSE_SMOKE_HOST_IP"
export GANTRY_COMPOSE_SMOKE=1 GANTRY_COMPOSE_SMOKE_DIR=$work GANTRY_COMPOSE_SMOKE_HOST_IP

t=$SECONDS
log "running TestComposeSmoke (project $COMPOSE_PROJECT_NAME)"
go test -count=1 -timeout 10m -run '^TestComposeSmoke$' -v ./cmd/gantry 2>&1 | tee "$work/test.log"
# A skip (a variable missing) or no test at all would exit 0 too.
grep -q '^--- PASS: TestComposeSmoke ' "$work/test.log" || die "TestComposeSmoke did not pass"
log "TestComposeSmoke took $((SECONDS - t)) s (compiling the test included)"
