#!/bin/bash
# Called by `make run`: start berthd (unless it already runs), build and import the default
# image (cached by recipe), launch a container and print how to get into it.
set -euo pipefail
IMAGE=${1:-debian/12}
NAME=${2:-first}
BERTH_DIR=${BERTH_DIR:-/var/lib/berth}
export BERTH_DIR
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "Error: make run needs root (berthd creates namespaces, cgroups and mounts)"; exit 1; }
mkdir -p "$BERTH_DIR"
pidfile=$BERTH_DIR/berthd.pid
log=$BERTH_DIR/berthd.log

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	echo "berthd already running (pid $(cat "$pidfile"))"
else
	# The host may have no init system: start the daemon ourselves, detached.
	setsid bin/berthd --dir "$BERTH_DIR" >>"$log" 2>&1 < /dev/null &
	echo $! > "$pidfile"
	for _ in $(seq 100); do [ -S "$BERTH_DIR/unix.socket" ] && break; sleep 0.1; done
	[ -S "$BERTH_DIR/unix.socket" ] || { echo "Error: berthd did not start; see $log"; tail -5 "$log"; exit 1; }
	echo "berthd started (pid $(cat "$pidfile"), log $log)"
fi

# Always build: the builder reuses the tarball of the current recipe and the import is
# skipped when the server has it, so this costs a hash when nothing changed, and a recipe
# change (a new image's tuning) reaches this daemon's alias instead of the first image
# ever built staying under it.
bin/berth image build "$IMAGE"

if bin/berth info "$NAME" >/dev/null 2>&1; then
	bin/berth start "$NAME" 2>/dev/null || true
else
	bin/berth launch "$IMAGE" "$NAME"
fi

bin/berth list
cat <<MSG

Container "$NAME" is running (systemd is PID 1, root inside is an unprivileged uid).
  export BERTH_DIR=$BERTH_DIR
  bin/berth list                       # what runs
  bin/berth exec $NAME -- bash         # a shell inside (or: LXD_DIR=$BERTH_DIR lxc exec $NAME -- bash)
  bin/berth stop $NAME                 # clean shutdown
  make stop                            # stop berthd (containers keep running)
MSG
