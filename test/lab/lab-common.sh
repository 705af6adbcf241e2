# lab-common.sh - what sharedfs-lab.sh and glusterfs-lab.sh share; sourced by both, defines
# functions only. The sourcing script sets LAB_NAME (for messages), P (prefix), STATE
# (/run/<lab>/$P) and defines node_env (for cmd_exec); load_state sets DIR and N.

die() { echo "$LAB_NAME: $*" >&2; exit 1; }
log() { echo "$LAB_NAME: $*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
ns_node() { echo "$P-n$1"; }
is_mounted() { awk -v m="$1" '$5 == m {f=1} END {exit !f}' /proc/self/mountinfo; }  # never stats the mount
load_state() { [ -f "$STATE/lab.env" ] || die "no lab '$P' is up"; . "$STATE/lab.env"; }
# Process exists and is not a zombie (our daemons are reparented to init,
# which may reap late, so `kill -0` alone would wait on corpses).
alive() { local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) && [ -n "$st" ] && [ "$st" != Z ]; }
check_k() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$N" ] || die "node must be 1..$N"; }

# check_up N DIR: the arguments of `up`.
check_up() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 200 ] || die "usage: up N DIR (1 <= N <= 200)"
  [ -n "$2" ] || die "usage: up N DIR"
  [[ ! "$2" =~ [[:space:]] ]] || die "DIR must not contain whitespace"
}

# install_pkgs NO_INSTALL PKG...: apt-get install the missing PKGs (none: nothing to do); with
# NO_INSTALL=1, fail instead.
install_pkgs() {
  local no=$1; shift
  [ $# = 0 ] && return 0
  [ "$no" = 1 ] && die "missing packages: $*"
  log "installing $*"
  # Keep a server package's postinst from starting a system daemon (sshd on *:22, glusterd on *:24007).
  local guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; fi
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends)
  local rc=0
  { ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || apt-get -q -o DPkg::Lock::Timeout=300 update; } >&2 || rc=$?
  [ $rc = 0 ] && { DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" >&2 ||
    { apt-get -q -o DPkg::Lock::Timeout=300 update >&2 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" >&2; } || rc=$?; }
  [ $guard = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || die "apt-get failed"
}

# reap_orphans PREFIX_VAR: labs whose owner process (lab.env OWNER, from <lab>_OWNER_PID) is gone
# (a killed test run) are taken down by the next `up`; labs without an owner are left alone.
reap_orphans() {
  local d owner
  for d in "${STATE%/*}"/*/; do
    [ -f "$d/lab.env" ] || continue
    owner=$(sed -n 's/^OWNER=//p' "$d/lab.env")
    [ -n "$owner" ] && [ "$owner" != "''" ] || continue
    alive "$owner" && continue
    log "taking down lab $(basename "$d") (its owner, pid $owner, is gone)"
    env "$1=$(basename "$d")" bash "$0" down >&2 || true
  done
}

# Immutable mount point: if the client ever dies, writes to the mount point fail with EPERM
# instead of silently landing on the local disk.
protect_mp() { is_mounted "$1" || chattr +i "$1" 2>/dev/null || log "chattr +i $1 failed (unprotected mount point)"; }
# Remove a mount point that is no longer mounted.
drop_mp() { is_mounted "$1" || { chattr -i "$1" 2>/dev/null; rmdir "$1" 2>/dev/null; } || true; }

# link_down NS SWITCH_NS PORT MODE: link: NS's eth0 admin-down; cut: its PORT on the switch side
# down (NS's link stays up, loses carrier; packets silently dropped).
link_down() {
  case $4 in
    link) ip -n "$1" link set eth0 down ;;
    cut) ip -n "$2" link set "$3" down ;;
    *) die "mode must be link or cut" ;;
  esac
}
# link_up NS SWITCH_NS PORT: both ends up again.
link_up() { ip -n "$2" link set "$3" up; ip -n "$1" link set eth0 up; }

# exec K CMD...: CMD in node K's netns, with the variables node_env K prints (NAME=VALUE a line).
cmd_exec() {
  need_root; load_state
  local k=${1:-} vars; check_k "$k"; shift
  [ $# -gt 0 ] || die "usage: exec K CMD..."
  mapfile -t vars < <(node_env "$k")
  exec nsenter --net=/run/netns/"$(ns_node "$k")" env "${vars[@]}" "$@"
}
