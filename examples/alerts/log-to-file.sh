#!/bin/sh
# peerha alert command: append one tab-separated line per alert to a log file.
#   alerts:
#     - command: /usr/share/peerha/examples/alerts/log-to-file.sh
# Columns: time, emitter, sequence, event, node, group, level, from node, description.
# The file is $PEERHA_ALERT_LOG (default /var/log/peerha-alerts.log); sort a merged file by
# emitter then sequence to read each node's alerts in order.
set -eu

log=${PEERHA_ALERT_LOG:-/var/log/peerha-alerts.log}
# One printf: a single short append, so lines from concurrent runs do not interleave.
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
  "${PEERHA_TIME:-}" "${PEERHA_EMITTER:-}" "${PEERHA_SEQUENCE:-}" "${PEERHA_EVENT:-}" \
  "${PEERHA_NODE:-}" "${PEERHA_GROUP:-}" "${PEERHA_LEVEL:-}" "${PEERHA_FROM_NODE:-}" \
  "${PEERHA_DESC:-}" >>"$log"
