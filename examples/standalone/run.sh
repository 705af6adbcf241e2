#!/usr/bin/env bash
# The standalone example, end to end: start the engine, bring groups up, show status, shut down.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peerha="$here/../../bin/peerha"
work="$(mktemp -d)"
trap 'node "$peerha" shutdown --socket "$work/run/clinit.s" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp "$here/cltab" "$work/cltab"
cd "$work"
mkdir -p run

echo "== peerha init --cltab $work/cltab (log: $work/init.log)"
node "$peerha" init --cltab cltab >init.log 2>&1 &
for _ in $(seq 50); do [ -S run/clinit.s ] && break; sleep 0.1; done

echo "== peerha tell web start --wait"
node "$peerha" tell web start --wait=20 --socket run/clinit.s
echo "== peerha tell worker slow --wait"
node "$peerha" tell worker slow --wait=20 --socket run/clinit.s
echo "== peerha status --local"
node "$peerha" status --local --socket run/clinit.s
if command -v curl >/dev/null 2>&1; then
  echo "== curl http://127.0.0.1:8931/"
  for _ in $(seq 50); do curl -fsS http://127.0.0.1:8931/ && break; sleep 0.1; done
fi
echo "== peerha tell worker fast --wait   (worker-log keeps running, worker-slow stops)"
node "$peerha" tell worker fast --wait=20 --socket run/clinit.s
echo "== peerha tell web stop --wait   (stops the server, runs the cleanup entry)"
node "$peerha" tell web stop --wait=20 --socket run/clinit.s
echo "== clstat"
cat run/clstat
echo "== peerha shutdown"
node "$peerha" shutdown --socket run/clinit.s
echo "== last log lines"
tail -n 5 init.log
