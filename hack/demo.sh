#!/bin/sh
# demo: load the offline busybox image into berth and run a container.
# Uses the daemon at $BERTH_HOST (or the default socket) if one answers;
# otherwise starts `berth daemon` on a temp root and socket, and stops it
# (and removes its state) at the end.
set -eu

BERTH=${BERTH:-bin/berth}
IMAGE=${IMAGE:-_output/images/busybox/busybox.tar}
[ -x "$BERTH" ] || BERTH=$(command -v berth)

started=""
tmp=""
cleanup() {
	if [ -n "$started" ]; then
		kill -TERM "$started" 2>/dev/null || true
		wait "$started" 2>/dev/null || true
	fi
	[ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

if ! "$BERTH" version >/dev/null 2>&1; then
	tmp=$(mktemp -d /tmp/berth-demo.XXXXXX)
	export BERTH_HOST="unix://$tmp/run/berth.sock"
	echo "+ berth daemon --root $tmp/root --exec-root $tmp/run -H $BERTH_HOST &"
	"$BERTH" daemon --root "$tmp/root" --exec-root "$tmp/run" -H "$BERTH_HOST" \
		--config-file /dev/null --log-level warn >"$tmp/daemon.log" 2>&1 &
	started=$!
	i=0
	until "$BERTH" version >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$started" 2>/dev/null; then
			echo "berth daemon did not start:" >&2
			cat "$tmp/daemon.log" >&2
			exit 1
		fi
		sleep 0.1
	done
fi

echo "+ berth load -i $IMAGE"
"$BERTH" load -i "$IMAGE"
echo "+ berth run --rm busybox echo hello from berth"
"$BERTH" run --rm busybox echo hello from berth
