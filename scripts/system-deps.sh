#!/usr/bin/env bash
# What the test suite needs from the system, installed when missing (as root, with apt) and said
# out loud; without root it only says what is missing, and the tests that need it fail at once
# naming it. `npm test` runs this first (PEERHA_NO_INSTALL=1 skips it); so does CI.
#
# ps (process hygiene), flock (overlap detection), systemd-notify + systemd-analyze (readiness,
# unit verification), python3 (stands in for systemd's notify socket), fence-agents (real agents:
# fence_dummy, fence_ipmilan metadata, fence_virsh), chattr (makes lab mount points immutable),
# faketime (steps the watchdog's wall clock), chromium (the status page's browser test). The two
# network-filesystem labs install their own packages (sshfs, openssh-server, fuse3, iproute2;
# glusterfs-server, glusterfs-client, attr) when brought up once here.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
command -v systemd-notify >/dev/null 2>&1 || need+=(systemd)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/sbin/fence_dummy ] || need+=(fence-agents)
command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ "$(id -u)" != 0 ]; then
  [ ${#need[@]} -eq 0 ] || echo "system-deps: missing ${need[*]} (not root: not installed; as root: apt-get install ${need[*]}); the tests that need them will fail naming them" >&2
  echo "system-deps: not root: the network-filesystem labs (test/chaos) cannot run here and will fail naming root" >&2
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "system-deps: installing ${need[*]} (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Bring each lab up and down once: it installs its packages now (sshfs ~8 s, GlusterFS ~15 s on a
# fresh machine) instead of in the middle of the parallel test run, and a machine that cannot run
# it (no /dev/fuse or network namespaces) says so here. Not fatal: the chaos test then fails.
warm() { # script, env prefix var, prefix, what
  local lab=$1 var=$2 prefix=$3 what=$4 dir
  [ -f "$lab" ] && [ "${PEERHA_DEPS_NO_LABS:-0}" != 1 ] || return 0
  dir=$(mktemp -d "/tmp/peerha-deps-$prefix.XXXXXX")
  env "$var=$prefix" bash "$lab" down >/dev/null 2>&1 || true
  if env "$var=$prefix" bash "$lab" up 1 "$dir" >/dev/null; then
    env "$var=$prefix" bash "$lab" down >/dev/null || true
  else
    echo "system-deps: warning: $lab cannot bring a lab up here; $what will fail" >&2
  fi
  grep -q " $dir/" /proc/self/mountinfo || rm -rf "$dir"
}
warm test/lab/sharedfs-lab.sh SFL_PREFIX peerhaci test/chaos/sshfs.test.ts
warm test/lab/glusterfs-lab.sh GFL_PREFIX peerhacig test/chaos/glusterfs.test.ts
