#!/bin/sh
# peerha alert command: POST the alert as JSON to $PEERHA_ALERT_URL (a chat or incident webhook),
# or, without a URL, mail it to $PEERHA_ALERT_MAILTO with sendmail.
#   alerts:
#     - command: PEERHA_ALERT_URL=https://hooks.example.com/T0/B0 /usr/share/peerha/examples/alerts/webhook.sh
#       events: [failover, node_stale, node_fenced, fence_failed, quorum_lost, group_failed]
#       timeout: 10s
# A non-zero exit is logged by the monitor; the run is killed at its timeout.
set -eu

# A JSON string: backslashes, quotes and control characters escaped.
json() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | tr -d '\000-\010\012-\037'
}

body=$(printf '{"event":"%s","node":"%s","group":"%s","level":"%s","from_node":"%s","description":"%s","sequence":%s,"time":"%s","emitter":"%s"}' \
  "$(json "${PEERHA_EVENT:-}")" "$(json "${PEERHA_NODE:-}")" "$(json "${PEERHA_GROUP:-}")" \
  "$(json "${PEERHA_LEVEL:-}")" "$(json "${PEERHA_FROM_NODE:-}")" "$(json "${PEERHA_DESC:-}")" \
  "${PEERHA_SEQUENCE:-0}" "$(json "${PEERHA_TIME:-}")" "$(json "${PEERHA_EMITTER:-}")")

if [ -n "${PEERHA_ALERT_URL:-}" ]; then
  exec curl --silent --show-error --fail --max-time 8 \
    -H 'Content-Type: application/json' --data-binary "$body" "$PEERHA_ALERT_URL"
fi

if [ -n "${PEERHA_ALERT_MAILTO:-}" ] && command -v sendmail >/dev/null 2>&1; then
  {
    printf 'To: %s\n' "$PEERHA_ALERT_MAILTO"
    printf 'Subject: [peerha] %s %s%s\n' "${PEERHA_EVENT:-}" "${PEERHA_NODE:-}" "${PEERHA_GROUP:+ $PEERHA_GROUP}"
    printf 'Content-Type: text/plain; charset=utf-8\n\n'
    printf '%s\n\n%s\n' "${PEERHA_DESC:-}" "$body"
  } | sendmail -t
  exit 0
fi

echo "webhook.sh: set PEERHA_ALERT_URL (or PEERHA_ALERT_MAILTO with sendmail installed)" >&2
exit 2
