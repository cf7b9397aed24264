# shellcheck shell=bash
# Sourced by scripts/testenv.sh and scripts/compose-smoke.sh: Debian bookworm images made with
# debootstrap from the machine's own Debian mirror, since the engine here can pull nothing.

# debian_mirror prints the mirror apt uses here (deb822 sources first, then sources.list).
debian_mirror() {
	local m=""
	if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
		m=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
		[[ -n $m ]] || m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
	fi
	if [[ -z $m && -r /etc/apt/sources.list ]]; then
		m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# remove_root removes a debootstrap root, unmounting anything debootstrap may have left mounted
# inside it first. An empty argument is nothing to remove.
remove_root() {
	local root=${1:-} m
	[[ -n $root && -d $root ]] || return 0
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r)
	rm -rf --one-file-system "$root"
}

# debootstrap_image TAG CMD DIR LOG [PACKAGES]: a minbase bookworm root with PACKAGES
# (comma-separated) in a temporary directory under DIR, imported as TAG with CMD (a JSON array),
# debootstrap's output in LOG. The root being built is named by $debootstrap_root, for the
# caller's exit handler to remove_root if it is interrupted. Fails with LOG's tail on stderr.
debootstrap_image() {
	local tag=$1 cmd=$2 dir=$3 logfile=$4 include=${5:+--include=$5}
	debootstrap_root=$(mktemp -d "$dir/root.XXXXXX")
	# shellcheck disable=SC2086 # include is one word or none
	if ! debootstrap --variant=minbase $include bookworm "$debootstrap_root" "$(debian_mirror)" >"$logfile" 2>&1; then
		tail -n 20 "$logfile" >&2
		remove_root "$debootstrap_root"
		debootstrap_root=
		return 1
	fi
	# downloaded .debs and apt lists only make the image bigger
	rm -rf "$debootstrap_root"/var/cache/apt/archives/*.deb "$debootstrap_root"/var/lib/apt/lists/*
	local rc=0
	tar --numeric-owner -C "$debootstrap_root" -c . | docker import -c "CMD $cmd" - "$tag" >/dev/null || rc=$?
	remove_root "$debootstrap_root"
	debootstrap_root=
	return "$rc"
}
