#!/usr/bin/env bash
# gantry's test environment: real Redis, a registry with an htpasswd login, and local base images.
#
#   scripts/testenv.sh up     start (or reuse) everything, build missing images, write $state/env
#   scripts/testenv.sh down   stop the processes this script started (by PID); images and data stay
#   scripts/testenv.sh env    print $state/env (shell `export` lines)
#
# State lives in ${GANTRY_TESTENV_DIR:-<repo>/.testenv}. Typical use:
#   scripts/testenv.sh up && eval "$(scripts/testenv.sh env)" && go test ./...
#
# Everything listens on 127.0.0.1 on ports chosen here; nothing is pulled from any registry
# (the engine cannot pull): the images are built from Debian packages and the Debian mirror.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${GANTRY_TESTENV_DIR:-$repo/.testenv}
# shellcheck source=scripts/lib/debian.sh
. "$repo/scripts/lib/debian.sh"

BUSYBOX_IMAGE=gantry-test/busybox:1
PYTHON_IMAGE=gantry-test/python:3.11
PYTHON_IMAGE_LATEST=gantry-test/python:latest
REGISTRY_USER=gantry
GREMLINS_VERSION=v0.6.0   # mutation testing (scripts/mutation.sh); pinned so scores compare
REDIS_PORTS=(6390 6499)    # first and last port tried
REGISTRY_PORTS=(5090 5199)

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	cat >&2 <<EOF
usage: $0 up|down|env
  up    start/reuse redis + registry, build missing gantry-test/* images, write $state/env
  down  stop the redis and registry processes started by 'up' (images and registry data stay)
  env   print the export lines of $state/env
state dir: \${GANTRY_TESTENV_DIR:-<repo>/.testenv}
EOF
}

# ---------------------------------------------------------------- helpers

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# pid_is PID NAME: the process is alive and its command line mentions NAME (guards against PID reuse).
pid_is() {
	pid_alive "$1" || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

read_file() { if [[ -s $1 ]]; then cat "$1"; fi; }

# port_free PORT: nothing listens on it (any address) — ss when available, else a connect probe.
port_free() {
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]
	else
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
	fi
}

# candidate_ports PREFERRED FIRST LAST: the preferred port (if free) first, then up to 5 free ones in range.
candidate_ports() {
	local pref=$1 first=$2 last=$3 p n=0
	[[ -n $pref ]] && port_free "$pref" && echo "$pref"
	for ((p = first; p <= last && n < 5; p++)); do
		[[ $p == "$pref" ]] && continue
		port_free "$p" && echo "$p" && n=$((n + 1))
	done
	return 0
}

# close_extra_fds: in a subshell about to exec a daemon, close every inherited fd above 2 (the lock,
# callers' pipes), so the daemon holds nothing that a caller might wait on.
close_extra_fds() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		((fd > 2)) || continue
		eval "exec $fd>&-" 2>/dev/null || true
	done
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

pkg_installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

# ---------------------------------------------------------------- packages

ensure_packages() {
	local missing=()
	command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
	command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel) # cmd/gantry/TestRedisFailover
	[[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
	command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
	pkg_installed busybox-static || missing+=(busybox-static)
	command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
	[[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
	command -v curl >/dev/null 2>&1 || missing+=(curl)
	command -v wrk >/dev/null 2>&1 || missing+=(wrk)
	command -v ss >/dev/null 2>&1 || missing+=(iproute2)
	command -v docker >/dev/null 2>&1 || missing+=(docker.io)
	command -v chromium >/dev/null 2>&1 || missing+=(chromium) # the pages' browser tests
	command -v promtool >/dev/null 2>&1 || missing+=(prometheus) # promtool checks deploy/prometheus
	command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose) # scripts/compose-smoke.sh
	((${#missing[@]} == 0)) && return 0
	log "installing missing packages: ${missing[*]}"
	local sudo=()
	((EUID == 0)) || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# ---------------------------------------------------------------- docker engine

ensure_docker() {
	docker info >/dev/null 2>&1 && return 0
	command -v dockerd >/dev/null 2>&1 || die "docker CLI present but no dockerd; install docker.io"
	log "docker engine not answering; starting dockerd (log: $state/dockerd.log); 'down' leaves it running"
	(close_extra_fds && exec setsid nohup dockerd </dev/null >"$state/dockerd.log" 2>&1) &
	echo $! >"$state/dockerd.pid"
	local i
	for ((i = 0; i < 60; i++)); do
		docker info >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "dockerd did not come up in 30 s; see $state/dockerd.log"
}

# ---------------------------------------------------------------- redis

redis_ok() { # redis_ok PID PORT: that PID serves PING on that port
	local pid=$1 port=$2 info
	pid_is "$pid" redis-server || return 1
	[[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] || return 1
	info=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r')
	grep -qx "process_id:$pid" <<<"$info"
}

ensure_redis() {
	local dir=$state/redis pid port i
	mkdir -p "$dir"
	pid=$(read_file "$dir/redis.pid")
	port=$(read_file "$dir/port")
	if [[ -n $pid && -n $port ]] && redis_ok "$pid" "$port"; then
		log "redis: reusing pid $pid on 127.0.0.1:$port"
		REDIS_PORT=$port
		return 0
	fi
	rm -f "$dir/redis.pid"
	for port in $(candidate_ports "$port" "${REDIS_PORTS[@]}"); do
		(close_extra_fds && exec redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --databases 1024 \
			--daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" \
			</dev/null >/dev/null 2>&1) || continue
		for ((i = 0; i < 50; i++)); do
			pid=$(read_file "$dir/redis.pid")
			if [[ -n $pid ]] && redis_ok "$pid" "$port"; then
				echo "$port" >"$dir/port"
				log "redis: started pid $pid on 127.0.0.1:$port"
				REDIS_PORT=$port
				return 0
			fi
			# the daemonized child exits at once when it cannot bind
			[[ -n $pid ]] && ! pid_alive "$pid" && break
			sleep 0.1
		done
		pid=$(read_file "$dir/redis.pid")
		if pid_is "$pid" redis-server; then kill "$pid" 2>/dev/null || true; fi
		rm -f "$dir/redis.pid"
		log "redis: could not start on port $port, trying another"
	done
	die "redis: could not start on any port in ${REDIS_PORTS[0]}-${REDIS_PORTS[1]}; see $dir/redis.log"
}

# ---------------------------------------------------------------- registry

registry_ok() { # registry_ok PID PORT
	pid_is "$1" docker-registry || return 1
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		-u "$REGISTRY_USER:$REGISTRY_PASSWORD" "http://127.0.0.1:$2/v2/" 2>/dev/null) == 200 ]]
}

write_registry_config() { # write_registry_config PORT
	local dir=$state/registry
	cat >"$dir/config.yml" <<EOF
# written by scripts/testenv.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$1
  secret: $(read_file "$dir/http-secret")
auth:
  htpasswd:
    realm: gantry-test
    path: $dir/htpasswd
EOF
}

ensure_registry() {
	local dir=$state/registry pid port i
	mkdir -p "$dir/data"
	# credentials: generated once, kept in the state dir
	if [[ ! -s $dir/password ]]; then
		(umask 077 && random_hex 24 >"$dir/password")
	fi
	REGISTRY_PASSWORD=$(cat "$dir/password")
	[[ -s $dir/http-secret ]] || (umask 077 && random_hex 32 >"$dir/http-secret")
	if [[ ! -s $dir/htpasswd ]] || ! htpasswd -vb "$dir/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASSWORD" >/dev/null 2>&1; then
		(umask 077 && htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" | sed '/^$/d' >"$dir/htpasswd")
	fi

	pid=$(read_file "$dir/registry.pid")
	port=$(read_file "$dir/port")
	if [[ -n $pid && -n $port ]] && registry_ok "$pid" "$port"; then
		log "registry: reusing pid $pid on 127.0.0.1:$port"
		REGISTRY_PORT=$port
		return 0
	fi
	rm -f "$dir/registry.pid"
	for port in $(candidate_ports "$port" "${REGISTRY_PORTS[@]}"); do
		write_registry_config "$port"
		# own session (setsid execs in place: a background subshell is no group leader), so $! is
		# the registry's PID and a Ctrl-C in the caller's terminal does not reach it
		(cd "$dir" && close_extra_fds && exec setsid nohup /usr/bin/docker-registry serve config.yml \
			</dev/null >>"$dir/registry.log" 2>&1) &
		pid=$!
		echo "$pid" >"$dir/registry.pid"
		for ((i = 0; i < 100; i++)); do
			if registry_ok "$pid" "$port"; then
				echo "$port" >"$dir/port"
				log "registry: started pid $pid on 127.0.0.1:$port (user $REGISTRY_USER)"
				REGISTRY_PORT=$port
				return 0
			fi
			pid_alive "$pid" || break
			sleep 0.1
		done
		if pid_is "$pid" docker-registry; then kill "$pid" 2>/dev/null || true; fi
		rm -f "$dir/registry.pid"
		log "registry: could not start on port $port, trying another (log: $dir/registry.log)"
	done
	die "registry: could not start on any port in ${REGISTRY_PORTS[0]}-${REGISTRY_PORTS[1]}; see $dir/registry.log"
}

# ---------------------------------------------------------------- images

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_busybox_image() {
	if image_exists "$BUSYBOX_IMAGE"; then
		log "image $BUSYBOX_IMAGE: present"
		return 0
	fi
	local ctx
	ctx=$(mktemp -d "$state/busybox-ctx.XXXXXX")
	cp /bin/busybox "$ctx/busybox"
	cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
EOF
	log "image $BUSYBOX_IMAGE: building"
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$BUSYBOX_IMAGE" "$ctx" >/dev/null 2>"$ctx.log"; then
		cat "$ctx.log" >&2
		rm -rf "$ctx" "$ctx.log"
		die "building $BUSYBOX_IMAGE failed"
	fi
	rm -rf "$ctx" "$ctx.log"
	log "image $BUSYBOX_IMAGE: built"
}

ensure_python_image() {
	if image_exists "$PYTHON_IMAGE"; then
		log "image $PYTHON_IMAGE: present"
		image_exists "$PYTHON_IMAGE_LATEST" || docker tag "$PYTHON_IMAGE" "$PYTHON_IMAGE_LATEST"
		return 0
	fi
	local start=$SECONDS
	log "image $PYTHON_IMAGE: debootstrap bookworm from $(debian_mirror) (about a minute; log: $state/debootstrap.log)"
	trap 'remove_root "${debootstrap_root:-}"' EXIT
	debootstrap_image "$PYTHON_IMAGE" '["python3"]' "$state" "$state/debootstrap.log" \
		python3,python3-pip,python3-pytest,python3-venv || die "debootstrap failed; see $state/debootstrap.log"
	trap - EXIT
	docker tag "$PYTHON_IMAGE" "$PYTHON_IMAGE_LATEST"
	log "image $PYTHON_IMAGE: built in $((SECONDS - start)) s (also tagged $PYTHON_IMAGE_LATEST)"
}

# ---------------------------------------------------------------- tools

# ensure_gremlins installs gremlins from the Go module proxy into $state/bin, at the pinned
# version, unless that version is there already.
ensure_gremlins() {
	local bin=$state/bin/gremlins
	if [[ -x $bin ]] && go version -m "$bin" 2>/dev/null | grep -q "gremlins[[:space:]]*$GREMLINS_VERSION"; then
		return
	fi
	log "gremlins $GREMLINS_VERSION: installing"
	GOBIN=$state/bin go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION" >&2
}

# ---------------------------------------------------------------- env file

write_env() {
	local tmp=$state/env.tmp
	{
		echo "# written by scripts/testenv.sh up; source it or eval \"\$(scripts/testenv.sh env)\""
		printf 'export GANTRY_TEST_REDIS_URL=%q\n' "redis://127.0.0.1:$REDIS_PORT"
		printf 'export GANTRY_TEST_REGISTRY=%q\n' "127.0.0.1:$REGISTRY_PORT"
		printf 'export GANTRY_TEST_REGISTRY_USER=%q\n' "$REGISTRY_USER"
		printf 'export GANTRY_TEST_REGISTRY_PASSWORD=%q\n' "$REGISTRY_PASSWORD"
		printf 'export GANTRY_TEST_BUSYBOX_IMAGE=%q\n' "$BUSYBOX_IMAGE"
		printf 'export GANTRY_TEST_PYTHON_IMAGE=%q\n' "$PYTHON_IMAGE"
		printf 'export GANTRY_TEST_GREMLINS=%q\n' "$state/bin/gremlins"
	} >"$tmp"
	mv -f "$tmp" "$state/env"
}

# ---------------------------------------------------------------- commands

lock() {
	mkdir -p "$state"
	exec 9>"$state/.lock"
	flock -w 900 9 || die "another testenv.sh holds $state/.lock"
}

cmd_up() {
	local start=$SECONDS
	lock
	ensure_packages
	ensure_docker
	ensure_redis
	ensure_registry
	ensure_busybox_image
	ensure_python_image
	ensure_gremlins
	write_env
	log "up in $((SECONDS - start)) s; env: $state/env (eval \"\$($0 env)\")"
}

stop_pid() { # stop_pid PIDFILE NAME
	local pidfile=$1 name=$2 pid i
	pid=$(read_file "$pidfile")
	if [[ -z $pid ]]; then
		log "$name: not running (no pid file)"
	elif ! pid_is "$pid" "$name"; then
		log "$name: pid $pid is gone (or is not $name); nothing to stop"
	else
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			pid_alive "$pid" || break
			sleep 0.1
		done
		if pid_alive "$pid"; then
			log "$name: pid $pid ignored TERM for 10 s; killing"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "$name: stopped pid $pid"
	fi
	rm -f "$pidfile"
}

cmd_down() {
	[[ -d $state ]] || { log "nothing to stop ($state does not exist)"; return 0; }
	lock
	stop_pid "$state/redis/redis.pid" redis-server
	stop_pid "$state/registry/registry.pid" docker-registry
	rm -f "$state/env"
	log "down (images and registry data kept)"
}

cmd_env() {
	[[ -s $state/env ]] || die "no $state/env; run: $0 up"
	cat "$state/env"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
env) cmd_env ;;
-h | --help | help) usage ;;
*)
	usage
	exit 2
	;;
esac
