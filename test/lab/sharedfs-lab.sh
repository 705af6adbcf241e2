#!/usr/bin/env bash
# The project's own copy of the shared-filesystem lab its sshfs chaos test and bench drive.
# sharedfs-lab.sh - a multi-node shared-filesystem test lab on one Linux host.
#
# Topology (all addresses exist only inside the lab's network namespaces):
#   ns <P>-stor : bridge br0 = <NET>.1/24, sshd (internal-sftp) on <NET>.1:<PORT>
#   ns <P>-nK   : eth0 = <NET>.(10+K)/24, veth peer "sK" enslaved to br0 in <P>-stor
# Node K's share is an sshfs (FUSE) mount at DIR/node-K whose sshfs/ssh
# processes live in ns <P>-nK, so its traffic crosses node K's own link.
# Mounts live in the host mount namespace (sshfs is started with
# `nsenter --net`, not `ip netns exec`, which would hide the mount in a
# private mount namespace), so tests can also read DIR/node-K directly.
#
# Usage (root):
#   sharedfs-lab.sh up N DIR        create storage + N nodes, mount DIR/node-1..N
#   sharedfs-lab.sh exec K CMD...   run CMD in node K's netns (env SFL_NODE, SFL_SHARE)
#   sharedfs-lab.sh partition K [link|cut]
#                                   link (default): node K's eth0 admin-down
#                                   cut: storage-side veth down (node link stays up,
#                                   loses carrier; packets silently dropped)
#   sharedfs-lab.sh heal K          links up, wait for sshd, remount if sshfs died
#   sharedfs-lab.sh status          links, sshfs pids, mount health
#   sharedfs-lab.sh down            tear everything down (idempotent); also
#                                   SIGTERMs anything still running in the lab's netns
# Processes started with `exec` see all of DIR (one mount namespace): by
# convention a node only touches $SFL_SHARE. Old file descriptors die on an
# sshfs reconnect (EIO): reopen files for every read/write.
# Env: SFL_PREFIX (default sfl; use distinct prefixes and DIRs for labs that
#      run side by side), SFL_NET (first 3 octets, default 10.213.7),
#      SFL_PORT (2222), SFL_SSHFS_OPTS (default below), SFL_OWNER_PID (the lab
#      belongs to this process: once it is gone, the next `up` of any lab takes
#      this one down), SFL_NO_INSTALL=1.
set -euo pipefail

LAB_NAME=sharedfs-lab
P=${SFL_PREFIX:-sfl}
NET=${SFL_NET:-10.213.7}
PORT=${SFL_PORT:-2222}
STATE=/run/sharedfs-lab/$P
# No sshfs dir cache and no kernel attr/entry cache: cross-node changes are seen
# within milliseconds and readers never get content cut to a stale size.
# ServerAlive*: a dead link drops the ssh session after ~3 s instead of hanging;
# reconnect: the next file operation after that dials again.
SSHFS_OPTS=${SFL_SSHFS_OPTS:-dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0,reconnect,ServerAliveInterval=1,ServerAliveCountMax=3,ConnectTimeout=3}

# die, log, need_root, ns_node, is_mounted, load_state, alive, check_k, check_up, install_pkgs,
# reap_orphans, protect_mp, drop_mp, link_down, link_up, cmd_exec.
. "$(dirname "${BASH_SOURCE[0]}")/lab-common.sh"
ns_stor() { echo "$P-stor"; }
node_env() { printf '%s\n' "SFL_NODE=$1" "SFL_SHARE=$DIR/node-$1" "SFL_EXPORT=$DIR/export"; }

ensure_pkgs() {
  local missing=()
  command -v sshfs >/dev/null || missing+=(sshfs)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nsenter >/dev/null || missing+=(util-linux)
  install_pkgs "${SFL_NO_INSTALL:-0}" "${missing[@]}"
}

# Wait (bounded) until TCP connect from netns $1 to the storage sshd succeeds.
wait_tcp() {
  local ns=$1 tries=${2:-50} i
  for ((i = 0; i < tries; i++)); do
    nsenter --net=/run/netns/"$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$NET.1/$PORT" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Start sshfs for node K in its netns (foreground process, backgrounded here).
mount_node() {
  local k=$1 mp=$DIR/node-$1 i pid
  mkdir -p "$mp"
  protect_mp "$mp"
  setsid nsenter --net=/run/netns/"$(ns_node "$k")" \
    sshfs -f "root@$NET.1:$DIR/export" "$mp" -p "$PORT" \
    -o "IdentityFile=$STATE/client_key,UserKnownHostsFile=/dev/null,StrictHostKeyChecking=no,BatchMode=yes,LogLevel=ERROR,fsname=$P-node-$k,$SSHFS_OPTS" \
    </dev/null >>"$STATE/sshfs-$k.log" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/sshfs-$k.pid"
  for ((i = 0; i < 150; i++)); do
    is_mounted "$mp" && return 0
    alive "$pid" || break
    sleep 0.1
  done
  log "mount of node $k failed; log:"; tail -5 "$STATE/sshfs-$k.log" >&2 || true
  return 1
}

# Stop node K's sshfs and its ssh (same process group: sshfs was started by
# setsid), then drop the mount if it is still there.
umount_node() {
  local k=$1 mp=$DIR/node-$1 pid i
  pid=$(cat "$STATE/sshfs-$k.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do alive "$pid" || break; sleep 0.05; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  if is_mounted "$mp"; then fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; fi
  rm -f "$STATE/sshfs-$k.pid"
}

cmd_up() {
  need_root
  local n=${1:-} dir=${2:-} k
  check_up "$n" "$dir"
  reap_orphans SFL_PREFIX
  [ -e "$STATE/lab.env" ] && die "lab '$P' is already up (run: $0 down)"
  ensure_pkgs
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || die "/dev/fuse missing"
  mkdir -p "$dir/export" "$STATE" /run/sshd
  DIR=$(realpath "$dir"); N=$n
  printf 'DIR=%q\nN=%q\nNET=%q\nPORT=%q\nSSHFS_OPTS=%q\nOWNER=%q\n' "$DIR" "$N" "$NET" "$PORT" "$SSHFS_OPTS" "${SFL_OWNER_PID:-}" >"$STATE/lab.env"
  trap 'rc=$?; [ $rc = 0 ] || { log "up failed; tearing down"; cmd_down >/dev/null 2>&1; }; exit $rc' EXIT

  ssh-keygen -q -t ed25519 -N '' -f "$STATE/host_key" <<<y >/dev/null
  ssh-keygen -q -t ed25519 -N '' -f "$STATE/client_key" <<<y >/dev/null
  cp "$STATE/client_key.pub" "$STATE/authorized_keys"
  cat >"$STATE/sshd_config" <<EOF
ListenAddress $NET.1
Port $PORT
HostKey $STATE/host_key
PidFile $STATE/sshd.pid
AuthorizedKeysFile $STATE/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
MaxStartups 200
ClientAliveInterval 2
ClientAliveCountMax 3
Subsystem sftp internal-sftp
LogLevel ERROR
EOF

  # Storage namespace with a bridge; one veth pair per node.
  ip netns add "$(ns_stor)"
  ip -n "$(ns_stor)" link set lo up
  ip -n "$(ns_stor)" link add br0 type bridge
  ip -n "$(ns_stor)" addr add "$NET.1/24" dev br0
  ip -n "$(ns_stor)" link set br0 up
  for ((k = 1; k <= N; k++)); do
    ip netns add "$(ns_node "$k")"
    ip -n "$(ns_node "$k")" link set lo up
    ip -n "$(ns_stor)" link add "s$k" type veth peer name eth0 netns "$(ns_node "$k")"
    ip -n "$(ns_stor)" link set "s$k" master br0 up
    ip -n "$(ns_node "$k")" addr add "$NET.$((10 + k))/24" dev eth0
    ip -n "$(ns_node "$k")" link set eth0 up
  done

  nsenter --net=/run/netns/"$(ns_stor)" /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
  wait_tcp "$(ns_node 1)" 100 || die "sshd not reachable from node 1"
  local pids=() fail=0
  for ((k = 1; k <= N; k++)); do mount_node "$k" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || die "some mounts failed"
  trap - EXIT

  echo "SFL_PREFIX=$P"
  echo "SFL_EXPORT=$DIR/export"
  for ((k = 1; k <= N; k++)); do echo "SFL_NODE_$k=$DIR/node-$k ns=$(ns_node "$k") ip=$NET.$((10 + k))"; done
}

cmd_partition() {
  need_root; load_state
  local k=${1:-} mode=${2:-link}; check_k "$k"
  link_down "$(ns_node "$k")" "$(ns_stor)" "s$k" "$mode"
  echo "node $k partitioned ($mode)"
}

cmd_heal() {
  need_root; load_state
  local k=${1:-}; check_k "$k"
  link_up "$(ns_node "$k")" "$(ns_stor)" "s$k"
  wait_tcp "$(ns_node "$k")" 100 || die "node $k still cannot reach storage"
  local pid; pid=$(cat "$STATE/sshfs-$k.pid" 2>/dev/null || true)
  # Remount when sshfs is gone or the mount does not answer within 10 s.
  if [ -z "$pid" ] || ! alive "$pid" || ! is_mounted "$DIR/node-$k" ||
     ! timeout -k 1 10 stat -t "$DIR/node-$k/." >/dev/null 2>&1; then
    log "remounting node $k"
    umount_node "$k"; mount_node "$k"
  fi
  echo "node $k healed"
}

cmd_status() {
  need_root; load_state
  local k pid link
  echo "lab $P: DIR=$DIR N=$N storage=$NET.1:$PORT sshd_pid=$(cat "$STATE/sshd.pid" 2>/dev/null || echo -)"
  for ((k = 1; k <= N; k++)); do
    pid=$(cat "$STATE/sshfs-$k.pid" 2>/dev/null || echo -)
    link="$(ip -n "$(ns_node "$k")" -br link show eth0 2>/dev/null | awk '{print $2}')/$(ip -n "$(ns_stor)" -br link show "s$k" 2>/dev/null | awk '{print $2}')"
    local h=down
    is_mounted "$DIR/node-$k" && { timeout -k 1 3 stat -t "$DIR/node-$k/." >/dev/null 2>&1 && h=ok || h=unresponsive; }
    echo "node $k: ip=$NET.$((10 + k)) link(node/stor)=$link sshfs_pid=$pid mount=$h"
  done
}

cmd_down() {
  need_root
  if [ -f "$STATE/lab.env" ]; then
    . "$STATE/lab.env"
    local k pids=()
    for ((k = 1; k <= N; k++)); do umount_node "$k" & pids+=($!); done
    wait "${pids[@]}" 2>/dev/null || true
    local spid; spid=$(cat "$STATE/sshd.pid" 2>/dev/null || true)
    if [ -n "$spid" ] && alive "$spid"; then
      kill -TERM "$spid" 2>/dev/null || true
      for ((k = 0; k < 60; k++)); do alive "$spid" || break; sleep 0.05; done
    fi
    for ((k = 1; k <= N; k++)); do
      drop_mp "$DIR/node-$k"
    done
  fi
  # Whatever still runs in the lab's namespaces (sshd sessions, commands started
  # with `exec`) gets SIGTERM; deleting the namespaces removes veths and bridge.
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(stor|n[0-9]+)\$" || true); do
    ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$STATE"; rmdir /run/sharedfs-lab 2>/dev/null || true
  echo "lab $P down"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  partition) shift; cmd_partition "$@" ;;
  heal) shift; cmd_heal "$@" ;;
  status) shift; cmd_status "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
