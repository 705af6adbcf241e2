#!/usr/bin/env bash
# The project's own GlusterFS lab, driven by test/chaos/glusterfs.test.ts: no single storage server.
# glusterfs-lab.sh - a replica-3 GlusterFS volume and N client nodes on one Linux host.
#
# Topology (all addresses exist only inside the lab's network namespaces):
#   ns <P>-sw  : bridge br0 (no address); one veth port per namespace below
#   ns <P>-sJ  : storage node J (J = 1..3), eth0 = <NET>.J/24 (its bridge port: "sJ");
#                glusterd (own working dir, run dir and CLI socket), brick glusterfsd, self-heal daemon
#   ns <P>-v   : observer, eth0 = <NET>.9/24 (port "v"); FUSE mount DIR/view, never faulted
#   ns <P>-nK  : node K (K = 1..N), eth0 = <NET>.(10+K)/24 (port "nK"); FUSE mount DIR/node-K
# Volume <P>: replica 3, one brick per storage node at DIR/bricks/sJ. Every FUSE client (glusterfs)
# lives in its node's netns, so its traffic to all three bricks crosses that node's own link; the
# mounts live in the host mount namespace (`nsenter --net`, as sharedfs-lab.sh), so tests can read
# DIR/node-K and DIR/view directly.
#
# Usage (root):
#   glusterfs-lab.sh up N DIR           3 storage nodes, volume, observer and N nodes, all mounted
#   glusterfs-lab.sh exec K CMD...      run CMD in node K's netns (env GFL_NODE, GFL_SHARE, GFL_VIEW)
#   glusterfs-lab.sh partition K [link|cut]
#                                       link (default): node K's eth0 admin-down
#                                       cut: its bridge port down (node link stays up, no carrier)
#   glusterfs-lab.sh heal K             links up, wait until the mount answers (remount if it died)
#                                       and is connected to every brick again; first waits until no
#                                       brick holds a connection the client already gave up (see
#                                       stale_on_brick)
#   glusterfs-lab.sh storage-kill J     SIGKILL storage node J's glusterd, brick and self-heal daemon
#   glusterfs-lab.sh storage-start J    start its glusterd again (it restarts brick and self-heal
#                                       daemon); wait until the brick is online
#   glusterfs-lab.sh storage-partition J [link|cut]
#   glusterfs-lab.sh storage-heal J     links up (after the same wait as heal); wait until its brick
#                                       is online again
#   glusterfs-lab.sh settle [SECONDS]   wait (default 60 s) until every brick is online, every client
#                                       (observer, unpartitioned nodes) is connected to every brick and
#                                       heal info shows no pending entry; fails (exit 1) on the
#                                       deadline, or at once on a split-brain or gfid mismatch
#   glusterfs-lab.sh heal-info          heal info summary, then one line: `heal-info: pending=P
#                                       split-brain=S healing=H connected=C/3 gfid-mismatch=G`
#   glusterfs-lab.sh gluster ARGS...    the gluster CLI on a live, unpartitioned storage node
#   glusterfs-lab.sh status             links, processes, brick and mount health
#   glusterfs-lab.sh down               tear everything down (idempotent): mounts, every process in
#                                       the lab's namespaces, bricks, namespaces, sockets and logs
# Env: GFL_PREFIX (default gfl; also the volume name; use distinct prefixes and DIRs for labs that run
#      side by side), GFL_NET (first 3 octets, default 10.213.8), GFL_PING_TIMEOUT (network.ping-
#      timeout, default 1 s), GFL_MOUNT_OPTS (default below), GFL_OWNER_PID (the lab belongs to this
#      process: once it is gone, the next `up` of any lab takes this one down), GFL_NO_INSTALL=1,
#      GFL_GSYNCD_STUB=0 (run glusterd with the real gsyncd; see start_glusterd).
#
# Why it looks like this (glusterfs 10.3, Debian 12):
# - One glusterd per storage namespace. glusterd's fixed paths are all options of its volfile:
#   `working-directory` (peers, volumes; default /var/lib/glusterd), `run-directory` (pid files;
#   /var/run/gluster) and `glusterd-sockfile` (the CLI's unix socket; /var/run/glusterd.socket).
#   The CLI takes `--glusterd-sock=`; glfsheal (behind `gluster volume heal … info`) only talks to
#   /var/run/glusterd.socket through the CLI, so heal-info runs glfsheal directly with `glusterd-sock`.
#   Still global: brick and self-heal-daemon unix sockets (/var/run/gluster/<hash>.socket, unique
#   per brick and peer uuid) and logs (/var/log/glusterfs/bricks/<brick path>.log, glustershd.log):
#   `down` removes ours.
# - `volume create … force`: the bricks sit on the root filesystem.
# - network.ping-timeout 1 (the minimum): a storage node or link that dies silently stalls every
#   client's I/O until the ping timer fires, up to 2 × ping-timeout (default 42 s; measured here
#   with 1: 1.2–2 s), then the other two bricks carry on; a killed brick resets its TCP
#   connections and costs nothing.
# - glusterd starts with a stub gsyncd (see start_glusterd): ~0.4 s instead of ~5 s.
# - Client caches off (md-cache, quick-read, open-behind, write-behind, io-cache, read-ahead,
#   readdir-ahead, nl-cache; FUSE attribute/entry/negative timeouts 0): another mount's change is
#   seen at the next operation, and close() returns once the data is on the bricks.
# - Quorum: client quorum `auto` (2 of 3 bricks, else EROFS) and server quorum (a glusterd that
#   sees less than half of its peers stops its brick).
# - server.keepalive-time/interval/count 1/1/2 and server.tcp-user-timeout 3: a brick drops the
#   connection of a client it cannot reach within ~3 s (default ~40 s); see stale_on_brick.
set -euo pipefail

LAB_NAME=glusterfs-lab
P=${GFL_PREFIX:-gfl}
NET=${GFL_NET:-10.213.8}
PING=${GFL_PING_TIMEOUT:-1}
STATE=/run/glusterfs-lab/$P
MOUNT_OPTS=${GFL_MOUNT_OPTS:-attribute-timeout=0,entry-timeout=0,negative-timeout=0}
# glusterfs helpers live under /usr/lib/<arch triplet>/glusterfs on Debian.
helper() { local f; for f in /usr/lib/*/glusterfs/"$1" /usr/libexec/glusterfs/"$1"; do [ -x "$f" ] && { echo "$f"; return 0; }; done; echo "/nonexistent/$1"; }
HEAL=$(helper glfsheal)
GSYNCD=$(helper gsyncd)

# die, log, need_root, ns_node, is_mounted, load_state, alive, check_k, check_up, install_pkgs,
# reap_orphans, protect_mp, drop_mp, link_down, link_up, cmd_exec.
. "$(dirname "${BASH_SOURCE[0]}")/lab-common.sh"
ns_sw() { echo "$P-sw"; }
ns_stor() { echo "$P-s$1"; }
ns_view() { echo "$P-v"; }
node_env() { printf '%s\n' "GFL_NODE=$1" "GFL_SHARE=$DIR/node-$1" "GFL_VIEW=$DIR/view"; }
in_ns() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }
check_j() { [[ "$1" =~ ^[1-3]$ ]] || die "storage node must be 1..3"; }
brick() { echo "$NET.$1:$DIR/bricks/s$1"; }
ms() { echo $(($(date +%s%N) / 1000000)); }

ensure_pkgs() {
  local missing=()
  [ -x /usr/sbin/glusterd ] || missing+=(glusterfs-server)
  [ -x /sbin/mount.glusterfs ] || missing+=(glusterfs-client)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v chattr >/dev/null || missing+=(e2fsprogs)
  command -v getfattr >/dev/null || missing+=(attr)
  install_pkgs "${GFL_NO_INSTALL:-0}" "${missing[@]}"
}

# ---- storage ------------------------------------------------------------------------------------

glusterd_pid() { local p; p=$(cat "$STATE/s$1/glusterd.pid" 2>/dev/null || true); [ -n "$p" ] && alive "$p" && echo "$p"; }

# The CLI against storage node J's glusterd (in its netns, through its own socket).
gcli_on() { local j=$1; shift; in_ns "$(ns_stor "$j")" timeout -k 2 30 gluster --mode=script --glusterd-sock="$STATE/s$j/glusterd.socket" "$@"; }

# A storage node to ask: glusterd alive and not partitioned (an isolated one only knows itself).
admin_j() {
  local j
  for j in 1 2 3; do [ ! -e "$STATE/s$j.cut" ] && glusterd_pid "$j" >/dev/null && { echo "$j"; return 0; }; done
  return 1
}

gcli() { local j; j=$(admin_j) || die "no storage node is up"; gcli_on "$j" "$@"; }

start_glusterd() {
  local j=$1 d=$STATE/s$1 i
  glusterd_pid "$j" >/dev/null && return 0
  mkdir -p "$d/lib" "$d/run"
  # /etc/glusterfs/glusterd.vol with this node's own paths (see the header).
  cat >"$d/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $d/lib
    option run-directory $d/run
    option glusterd-sockfile $d/glusterd.socket
    option transport-type socket
    option transport.socket.keepalive-time 10
    option transport.socket.keepalive-interval 2
    option transport.socket.read-fail-log off
    option transport.socket.listen-port 24007
    option ping-timeout 0
    option event-threads 1
    option max-port 60999
end-volume
EOF
  rm -f "$d/glusterd.socket"
  local args=(-f "$d/glusterd.vol" -p "$d/glusterd.pid" -l "$d/glusterd.log" --log-level=WARNING)
  if [ "${GFL_GSYNCD_STUB:-1}" = 1 ] && [ -x "$GSYNCD" ]; then
    # At start-up glusterd runs gsyncd (Python) some 25 times to configure geo-replication: ~4 s
    # of CPU here, and a storage-start stalls behind it. A stub that only answers --version is
    # bind-mounted over it in glusterd's own mount namespace (bricks and self-heal daemon inherit
    # it; the host's is untouched): glusterd then answers in well under a second.
    printf '#!/bin/sh\n[ "$1" = --version ] && echo "gsyncd.py lab-stub"\nexit 0\n' >"$STATE/gsyncd-stub"
    chmod +x "$STATE/gsyncd-stub"
    in_ns "$(ns_stor "$j")" unshare --mount --propagation private \
      sh -c 'mount --bind "$0" "$1" && shift && exec glusterd "$@"' "$STATE/gsyncd-stub" "$GSYNCD" "${args[@]}"
  else
    in_ns "$(ns_stor "$j")" glusterd "${args[@]}"
  fi
  for ((i = 0; i < 100; i++)); do
    gcli_on "$j" pool list >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "glusterd on storage node $j does not answer; log: $(tail -3 "$d/glusterd.log" 2>/dev/null)"
}

# Unix sockets (/var/run/gluster/<hash>.socket) of the processes in storage node J's netns.
storage_sockets() {
  local p
  for p in $(ip netns pids "$(ns_stor "$1")" 2>/dev/null || true); do
    { tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | grep -A1 -x -- -S | grep -v -x -- -S || true
  done
}

# Remember them: a brick stopped by server quorum (or a daemon restarted by glusterd) leaves its
# socket behind, and `down` removes every one the lab ever had.
note_sockets() { local j; for j in 1 2 3; do storage_sockets "$j"; done >>"$STATE/sockets"; }

remove_sockets() {
  local s
  for s in $(sort -u "$STATE/sockets" 2>/dev/null); do case $s in /var/run/gluster/*.socket | /run/gluster/*.socket) rm -f "$s" ;; esac; done
}

# Every process in storage node J's netns (glusterd, brick, self-heal daemon): SIGKILL, bounded wait.
kill_storage() {
  local j=$1 pids p i
  storage_sockets "$j" >>"$STATE/sockets"
  pids=$(ip netns pids "$(ns_stor "$j")" 2>/dev/null || true)
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  for p in $pids; do for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.02; done; done
  rm -f "$STATE/s$j/glusterd.pid" "$STATE/s$j/glusterd.socket"
}

# Is brick J connected, as glfsheal (a fresh client on the admin node) sees it? Not `volume status`:
# that takes a cluster-wide lock and hangs for its 30 s timeout while any peer is partitioned.
# (glfsheal waits ~10 s for a brick behind a silent link, then calls it not connected.)
brick_online() { brick_connected "$1" <<<"$(heal_info)"; }
brick_connected() {  # brick_connected J <heal_info output on stdin>
  awk -v b="Brick $(brick "$1")" '$0 == b {n = NR} n && NR == n + 1 {f = ($0 == "Status: Connected")} END {exit !f}'
}

wait_brick() {
  local j=$1 tries=${2:-600} i
  for ((i = 0; i < tries; i++)); do brick_online "$j" && return 0; sleep 0.1; done
  return 1
}

brick_port() {
  local p
  for p in $(ip netns pids "$(ns_stor "$1")" 2>/dev/null || true); do
    { tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | grep -A1 -x -- --brick-port | grep -v -x -- --brick-port && return 0
  done
  return 1
}

# The namespace that owns lab address $1 (nothing for a storage node's own address: local).
ns_of_ip() {
  local ip=$1 o=${1##*.}
  [ "${ip%.*}" = "$NET" ] || return 1
  if [ "$o" -ge 1 ] && [ "$o" -le 3 ]; then ns_stor "$o"
  elif [ "$o" = 9 ]; then ns_view
  elif [ "$o" -ge 11 ] && [ "$o" -le $((10 + N)) ]; then ns_node $((o - 10))
  else return 1; fi
}

# Client connections that brick J still holds although their client end is gone (the client
# gave up on them behind a partition and will come back on a new one), one "ip:port" a line.
# GlusterFS bug (10.3; unchanged upstream): when the brick finally drops such a connection it
# releases its inode locks but does not wake an unlink or rename that queued behind them
# (features/locks: pl_inodelk_client_cleanup never calls pl_inode_remove_unlocked), so that
# directory hangs until network.frame-timeout (30 min). Measured: 2 of ~16 storage partitions of 7-8 s, where the
# client's FIN retransmission reached the brick only seconds after the self-heal daemon had
# started on the directory. `heal` and `storage-heal` therefore first wait until every brick has
# dropped such connections (server.keepalive-* 1/1/2: within ~3 s).
stale_on_brick() {
  local j=$1 port peer pip pport ns
  port=$(brick_port "$j") || return 0
  in_ns "$(ns_stor "$j")" ss -Htn state established "( sport = :$port )" 2>/dev/null | while read -r _ _ _ peer _; do
    pip=${peer%:*}; pport=${peer##*:}
    [ "$pip" = "$NET.$j" ] && continue
    ns=$(ns_of_ip "$pip") || continue
    in_ns "$ns" ss -Htn state established "( sport = :$pport and dport = :$port )" 2>/dev/null | grep -q . || echo "$peer"
  done
}

# Wait (bounded) until no brick holds a stale client connection; says how long it took.
wait_no_stale() {
  local t0 j left i
  t0=$(ms)
  for ((i = 0; i < 300; i++)); do
    left=$(for j in 1 2 3; do [ -e "$STATE/s$j.killed" ] || stale_on_brick "$j"; done)
    [ -z "$left" ] && { [ $i = 0 ] || log "bricks dropped stale client connections in $(($(ms) - t0)) ms"; return 0; }
    sleep 0.1
  done
  log "bricks still hold stale client connections after 30 s: $(echo $left)"
  return 1
}

# Names that exist on two or more bricks with different gfids ("gfid split-brain": the entry
# fails with EIO and, if the heal index knows it, its directory stays "heal pending" for ever).
# Heal info counts none of them as split-brain, so the lab reads the bricks' trusted.gfid itself.
# One scan also sees renames in flight (a brick already has the new file, another the old one)
# and a stale brick before its heal: only what two scans 0.5 s apart both report counts.
gfid_scan() {
  local j
  for j in 1 2 3; do
    [ -d "$DIR/bricks/s$j" ] || continue
    (cd "$DIR/bricks/s$j" && find . -mindepth 1 \( -path ./.glusterfs -o -name '.glusterfs-anonymous-inode-*' \) -prune -o -print0 |
      xargs -0 -r getfattr --absolute-names -n trusted.gfid -e hex 2>/dev/null)
  done | awk '/^# file: / {f = substr($0, 9)} /^trusted.gfid=/ {g[f] = g[f] " " substr($0, 14); if (!((f, $0) in seen)) {seen[f, $0] = 1; n[f]++}}
    END {for (f in n) if (n[f] > 1) print f g[f]}' | sort
}
gfid_mismatches() {
  local a b
  a=$(gfid_scan)
  [ -n "$a" ] || return 0
  sleep 0.5
  b=$(gfid_scan)
  comm -12 <(echo "$a") <(echo "$b") | cut -d' ' -f1
}

# Runs glfsheal (info-summary) on the admin node and adds the totals line.
heal_info() {
  local j out gm
  j=$(admin_j) || { echo "heal-info: no storage node is up"; return 1; }
  out=$(in_ns "$(ns_stor "$j")" timeout -k 2 30 "$HEAL" "$P" info-summary glusterd-sock "$STATE/s$j/glusterd.socket" 2>&1) || true
  gm=$(gfid_mismatches)
  echo "$out"
  [ -z "$gm" ] || echo "gfid mismatch: $(echo $gm)"
  echo "$out" | awk -v gm="$(printf '%s' "$gm" | grep -c .)" '
    /^Brick / {b++}
    /^Status: Connected/ {c++}
    /^Number of entries in heal pending:/ {p += $NF}
    /^Number of entries in split-brain:/ {s += $NF}
    /^Number of entries possibly healing:/ {h += $NF}
    END {printf "heal-info: pending=%d split-brain=%d healing=%d connected=%d/%d gfid-mismatch=%d\n", p, s, h, c, (b ? b : 3), gm}'
}

# ---- clients ------------------------------------------------------------------------------------

# glusterfs (the FUSE client) of the mount at $1, found by its mount point argument.
client_pid() {
  local mp=$1 p
  for p in $(pgrep -x glusterfs 2>/dev/null || true); do
    [ "$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | tail -1)" = "$mp" ] && alive "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# Mount the volume at MP from netns NS (glusterfs daemonizes and stays in that netns).
mount_at() {
  local ns=$1 mp=$2 name=$3 servers="" j
  mkdir -p "$mp"
  protect_mp "$mp"
  # Any live glusterd serves the volfile: the others are backup-volfile-servers.
  for j in 1 2 3; do [ -e "$STATE/s$j.killed" ] || servers="$servers $NET.$j"; done
  set -- $servers
  local first=$1; shift
  local backup; backup=$(IFS=:; echo "$*")
  in_ns "$ns" timeout -k 2 30 mount -t glusterfs \
    -o "${backup:+backup-volfile-servers=$backup,}log-file=$STATE/client-$name.log,log-level=WARNING,$MOUNT_OPTS" \
    "$first:/$P" "$mp" >>"$STATE/client-$name.log" 2>&1 || { log "mount of $name failed; log:"; tail -5 "$STATE/client-$name.log" >&2; return 1; }
  is_mounted "$mp" || { log "mount of $name did not appear"; return 1; }
}

umount_at() {
  local mp=$1 pid i
  pid=$(client_pid "$mp" || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do alive "$pid" || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if is_mounted "$mp"; then umount -l "$mp" 2>/dev/null || true; fi
}

# Does the mount answer (a stat that gets an answer from the bricks) within $2 s?
answers() { is_mounted "$1" && timeout -k 1 "${2:-5}" stat -t "$1/." >/dev/null 2>&1; }

# How many storage nodes the FUSE client in netns $1 has a brick connection to (TCP established,
# not glusterd's 24007). A client that reconnected to two bricks works (quorum) but is not healed:
# while it misses the third, its creates can race another client's into a gfid split-brain (a
# name created on two bricks by one client and on the third by the other; measured once, with
# O_EXCL, right after a node's partition healed).
client_bricks() {
  in_ns "$1" ss -Htn state established '( dport != :24007 )' 2>/dev/null |
    awk -v net="$NET" '{split($4, a, ":"); if (a[1] == net ".1" || a[1] == net ".2" || a[1] == net ".3") s[a[1]] = 1} END {print length(s)}'
}

# Storage nodes that are up (not killed, not partitioned): what every client should reach.
storage_up() { local j n=0; for j in 1 2 3; do [ -e "$STATE/s$j.killed" ] || [ -e "$STATE/s$j.cut" ] || n=$((n + 1)); done; echo $n; }

wait_client_bricks() {
  local ns=$1 i
  for ((i = 0; i < 200; i++)); do [ "$(client_bricks "$ns")" -ge "$(storage_up)" ] && return 0; sleep 0.1; done
  return 1
}

# Clients (observer and unpartitioned nodes) not connected to every brick that is up, or nothing.
clients_short() {
  local k want; want=$(storage_up)
  [ "$(client_bricks "$(ns_view)")" -ge "$want" ] || echo view
  for ((k = 1; k <= N; k++)); do
    [ -e "$STATE/n$k.cut" ] || [ "$(client_bricks "$(ns_node "$k")")" -ge "$want" ] || echo "n$k"
  done
}

add_port() {  # add_port NS PORT ADDR
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip -n "$(ns_sw)" link add "$2" type veth peer name eth0 netns "$1"
  ip -n "$(ns_sw)" link set "$2" master br0 up
  ip -n "$1" addr add "$3/24" dev eth0
  ip -n "$1" link set eth0 up
}

cmd_up() {
  need_root
  local n=${1:-} dir=${2:-} k j
  check_up "$n" "$dir"
  [[ "$P" =~ ^[a-z][a-z0-9]{0,11}$ ]] || die "GFL_PREFIX must be 1-12 of [a-z0-9], starting with a letter"
  reap_orphans GFL_PREFIX
  [ -e "$STATE/lab.env" ] && die "lab '$P' is already up (run: $0 down)"
  # Leftovers of a lab whose state is gone (namespaces, processes): clear them first.
  ip netns list 2>/dev/null | awk '{print $1}' | grep -qE "^$P-(sw|v|s[0-9]+|n[0-9]+)\$" && cmd_down >/dev/null
  ensure_pkgs
  HEAL=$(helper glfsheal); GSYNCD=$(helper gsyncd)
  [ -x "$HEAL" ] || die "glfsheal missing (glusterfs-server)"
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || die "/dev/fuse missing"
  mkdir -p "$dir" "$STATE"
  DIR=$(realpath "$dir"); N=$n
  mkdir -p "$DIR/bricks"
  printf 'DIR=%q\nN=%q\nNET=%q\nPING=%q\nMOUNT_OPTS=%q\nOWNER=%q\n' "$DIR" "$N" "$NET" "$PING" "$MOUNT_OPTS" "${GFL_OWNER_PID:-}" >"$STATE/lab.env"
  trap 'rc=$?; [ $rc = 0 ] || { log "up failed; tearing down"; cmd_down >/dev/null 2>&1; }; exit $rc' EXIT
  local t0; t0=$(ms)

  ip netns add "$(ns_sw)"
  ip -n "$(ns_sw)" link set lo up
  ip -n "$(ns_sw)" link add br0 type bridge
  ip -n "$(ns_sw)" link set br0 up
  for j in 1 2 3; do add_port "$(ns_stor "$j")" "s$j" "$NET.$j"; done
  add_port "$(ns_view)" v "$NET.9"
  for ((k = 1; k <= N; k++)); do add_port "$(ns_node "$k")" "n$k" "$NET.$((10 + k))"; done

  local pids=() fail=0 p
  for j in 1 2 3; do mkdir -p "$DIR/bricks/s$j"; start_glusterd "$j" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || die "glusterd did not start"
  log "glusterd x3 at $(($(ms) - t0)) ms"
  gcli_on 1 peer probe "$NET.2" >/dev/null
  gcli_on 1 peer probe "$NET.3" >/dev/null
  # Peers are "Connected" on every node before a volume can be created.
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(for j in 1 2 3; do gcli_on "$j" pool list 2>/dev/null; done | grep -c Connected)" = 9 ] && break
    sleep 0.1
  done
  gcli_on 1 volume create "$P" replica 3 "$(brick 1)" "$(brick 2)" "$(brick 3)" force >/dev/null
  log "volume created at $(($(ms) - t0)) ms"
  gcli_on 1 volume set "$P" cluster.quorum-type auto cluster.server-quorum-type server network.ping-timeout "$PING" \
    performance.stat-prefetch off performance.quick-read off performance.open-behind off \
    performance.write-behind off performance.flush-behind off performance.io-cache off \
    performance.read-ahead off performance.readdir-ahead off performance.nl-cache off \
    server.keepalive-time 1 server.keepalive-interval 1 server.keepalive-count 2 server.tcp-user-timeout 3 \
    cluster.heal-timeout 5 diagnostics.brick-log-level WARNING diagnostics.client-log-level WARNING >/dev/null
  gcli_on 1 volume set all cluster.server-quorum-ratio 51 >/dev/null
  gcli_on 1 volume start "$P" >/dev/null
  for j in 1 2 3; do wait_brick "$j" 300 || die "brick $j not online"; done
  log "volume started at $(($(ms) - t0)) ms"
  note_sockets

  pids=()
  mount_at "$(ns_view)" "$DIR/view" view & pids+=($!)
  for ((k = 1; k <= N; k++)); do mount_at "$(ns_node "$k")" "$DIR/node-$k" "n$k" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || die "some mounts failed"
  trap - EXIT
  log "lab $P up in $(($(ms) - t0)) ms"

  echo "GFL_PREFIX=$P"
  echo "GFL_VOLUME=$P"
  echo "GFL_VIEW=$DIR/view"
  for j in 1 2 3; do echo "GFL_STORAGE_$j=$(brick "$j") ns=$(ns_stor "$j")"; done
  for ((k = 1; k <= N; k++)); do echo "GFL_NODE_$k=$DIR/node-$k ns=$(ns_node "$k") ip=$NET.$((10 + k))"; done
}

cmd_partition() {
  need_root; load_state
  local k=${1:-} mode=${2:-link}; check_k "$k"
  link_down "$(ns_node "$k")" "$(ns_sw)" "n$k" "$mode"
  touch "$STATE/n$k.cut"
  echo "node $k partitioned ($mode)"
}

cmd_heal() {
  need_root; load_state
  local k=${1:-} mp i; check_k "$k"; mp=$DIR/node-$k
  wait_no_stale || true
  link_up "$(ns_node "$k")" "$(ns_sw)" "n$k"
  rm -f "$STATE/n$k.cut"
  # The client reconnects by itself (its reconnect timer is 3 s); remount only when it died.
  for ((i = 0; i < 100; i++)); do
    answers "$mp" 2 && break
    client_pid "$mp" >/dev/null || { i=100; break; }
    sleep 0.1
  done
  if [ $i -ge 100 ]; then
    log "remounting node $k"
    umount_at "$mp"; mount_at "$(ns_node "$k")" "$mp" "n$k"
    answers "$mp" 10 || die "node $k: mount does not answer after remount"
  fi
  # The mount answers once two bricks are back; healed means all of them (see settle).
  wait_client_bricks "$(ns_node "$k")" || log "node $k: still not connected to every brick"
  echo "node $k healed"
}

cmd_storage_kill() {
  need_root; load_state
  local j=${1:-}; check_j "$j"
  kill_storage "$j"
  touch "$STATE/s$j.killed"
  echo "storage node $j killed"
}

cmd_storage_start() {
  need_root; load_state
  local j=${1:-}; check_j "$j"
  local t0; t0=$(ms)
  start_glusterd "$j"
  log "storage node $j: glusterd answers after $(($(ms) - t0)) ms"
  rm -f "$STATE/s$j.killed"
  # glusterd starts the brick and self-heal daemon once it has synced with its peers.
  wait_brick "$j" 600 || die "brick of storage node $j not online 60 s after start"
  note_sockets
  echo "storage node $j started in $(($(ms) - t0)) ms"
}

cmd_storage_partition() {
  need_root; load_state
  local j=${1:-} mode=${2:-link}; check_j "$j"
  link_down "$(ns_stor "$j")" "$(ns_sw)" "s$j" "$mode"
  touch "$STATE/s$j.cut"
  echo "storage node $j partitioned ($mode)"
}

cmd_storage_heal() {
  need_root; load_state
  local j=${1:-}; check_j "$j"
  wait_no_stale || true
  link_up "$(ns_stor "$j")" "$(ns_sw)" "s$j"
  rm -f "$STATE/s$j.cut"
  # Server quorum may have stopped the isolated brick; glusterd restarts it once it sees its peers.
  wait_brick "$j" 600 || die "brick of storage node $j not online 60 s after heal"
  note_sockets
  echo "storage node $j healed"
}

cmd_settle() {
  need_root; load_state
  local secs=${1:-60} t0 line stuck=0 short
  t0=$(ms)
  while :; do
    line=$(heal_info | tail -1)
    short=$(clients_short | tr '\n' ' ')
    [[ -z "$short" && "$line" =~ pending=0\ split-brain=0\ healing=0\ connected=3/3\ gfid-mismatch=0 ]] && { echo "settled in $(($(ms) - t0)) ms"; return 0; }
    [[ "$line" =~ split-brain=0[[:space:]] ]] || { echo "$line"; die "split-brain"; }
    # Different gfids that nothing is queued to heal: they stay (seen twice in a row).
    if [[ "$line" =~ pending=0\ split-brain=0\ healing=0\ connected=3/3 ]]; then
      stuck=$((stuck + 1)); [ $stuck -lt 2 ] || { echo "$line"; die "split-brain (gfid mismatch)"; }
    else stuck=0; fi
    [ $(($(ms) - t0)) -lt $((secs * 1000)) ] || { echo "$line${short:+; clients missing a brick: $short}"; die "not settled after $secs s"; }
    # Each heal_info starts a gfapi client (glfsheal) that connects to every brick: CPU the
    # monitors beside it need.
    sleep 0.5
  done
}

cmd_status() {
  need_root; load_state
  local j k link hi
  hi=$(heal_info)
  echo "lab $P: DIR=$DIR N=$N volume=$P ping-timeout=$PING"
  for j in 1 2 3; do
    link="$(ip -n "$(ns_stor "$j")" -br link show eth0 2>/dev/null | awk '{print $2}')/$(ip -n "$(ns_sw)" -br link show "s$j" 2>/dev/null | awk '{print $2}')"
    echo "storage $j: ip=$NET.$j link(node/switch)=$link glusterd=$(glusterd_pid "$j" || echo -) brick=$(brick_connected "$j" <<<"$hi" && echo connected || echo down)"
  done
  for k in view $(seq 1 "$N"); do
    local mp ns port
    if [ "$k" = view ]; then mp=$DIR/view; ns=$(ns_view); port=v; else mp=$DIR/node-$k; ns=$(ns_node "$k"); port=n$k; fi
    link="$(ip -n "$ns" -br link show eth0 2>/dev/null | awk '{print $2}')/$(ip -n "$(ns_sw)" -br link show "$port" 2>/dev/null | awk '{print $2}')"
    local h=down
    is_mounted "$mp" && { answers "$mp" 3 && h=ok || h=unresponsive; }
    echo "node $k: link(node/switch)=$link glusterfs=$(client_pid "$mp" || echo -) mount=$h"
  done
  tail -1 <<<"$hi"
}

cmd_down() {
  need_root
  local k j pids=() mp
  if [ -f "$STATE/lab.env" ]; then
    . "$STATE/lab.env"
    for mp in "$DIR/view" $(for ((k = 1; k <= N; k++)); do echo "$DIR/node-$k"; done); do umount_at "$mp" & pids+=($!); done
    [ ${#pids[@]} = 0 ] || wait "${pids[@]}" 2>/dev/null || true
  fi
  # Every process still in the lab's namespaces (glusterd, bricks, self-heal daemons, commands
  # started with `exec`): storage first (their sockets are removed), then SIGTERM, then SIGKILL.
  local ns all
  all=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(sw|v|s[0-9]+|n[0-9]+)\$" || true)
  [ -d "$STATE" ] && note_sockets
  for j in 1 2 3; do if echo "$all" | grep -qx "$(ns_stor "$j")"; then kill_storage "$j"; fi; done
  remove_sockets
  for ns in $all; do ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -TERM "$p" 2>/dev/null || true; done; done
  for ns in $all; do
    for ((k = 0; k < 40; k++)); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.05; done
    ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -f "$STATE/lab.env" ]; then
    for mp in "$DIR/view" $(for ((k = 1; k <= N; k++)); do echo "$DIR/node-$k"; done); do
      drop_mp "$mp"
    done
    # Bricks (with their .glusterfs metadata) belong to the lab; their logs are named after them.
    local b
    for j in 1 2 3; do
      b=$DIR/bricks/s$j
      rm -f "/var/log/glusterfs/bricks/$(echo "${b#/}" | tr / -).log"
    done
    rm -rf "$DIR/bricks"
  fi
  rm -f "/var/log/glusterfs/glfsheal-$P.log"
  rm -rf "$STATE"; rmdir /run/glusterfs-lab 2>/dev/null || true
  echo "lab $P down"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  partition) shift; cmd_partition "$@" ;;
  heal) shift; cmd_heal "$@" ;;
  storage-kill) shift; cmd_storage_kill "$@" ;;
  storage-start) shift; cmd_storage_start "$@" ;;
  storage-partition) shift; cmd_storage_partition "$@" ;;
  storage-heal) shift; cmd_storage_heal "$@" ;;
  settle) shift; cmd_settle "$@" ;;
  heal-info) shift; need_root; load_state; heal_info ;;
  gluster) shift; need_root; load_state; gcli "$@" ;;
  status) shift; cmd_status "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
