#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`. Idempotent; CI's .ci/run
# calls it before anything that needs docker.
#   - docker.io (Debian's Docker 20.10) is installed with apt when dockerd is
#     missing (needs root);
#   - dockerd is started in the background when it is not running, with its
#     pid in /var/run/docker.pid and its log in $DOCKERD_LOG;
#   - then it waits (up to $DOCKER_WAIT seconds) until `docker info` answers.
# A daemon that is already running is left alone, whoever started it.
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKER_WAIT="${DOCKER_WAIT:-60}"
PIDFILE=/var/run/docker.pid

log() { printf '[ensure-docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=hack/lib/docker.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/docker.sh"
docker_cli() { "${DOCKER}" "$@"; }

if docker_cli info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  [[ "$(id -u)" == 0 ]] || die "dockerd is not installed and installing it needs root"
  log "installing docker.io from Debian"
  # apt waits for a dpkg lock held by another apt run instead of failing;
  # apt locks with fcntl, so an flock(1) around it would not exclude it.
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends docker.io >/dev/null
fi

running_pid() {
  local pid
  [[ -r "${PIDFILE}" ]] || return 1
  pid="$(cat "${PIDFILE}")"
  [[ -n "${pid}" && -d "/proc/${pid}" ]] || return 1
  [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "${pid}"
}

if ! running_pid >/dev/null; then
  [[ "$(id -u)" == 0 ]] || die "dockerd is not running and starting it needs root"
  # A pidfile left by a dead daemon would make dockerd refuse to start.
  rm -f "${PIDFILE}"
  log "starting dockerd (log: ${DOCKERD_LOG})"
  # Started in its own session so it outlives this script and the CI step;
  # no init system runs on these machines to do it.
  # It must not keep its caller's open files either: a lock the caller
  # holds (flock around `make e2e`, say) would stay held for the daemon's
  # whole life.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec ${fd}>&-" 2>/dev/null || true; fi
    done
    exec setsid nohup dockerd --pidfile "${PIDFILE}" >>"${DOCKERD_LOG}" 2>&1 </dev/null
  ) &
fi

for _ in $(seq 1 "${DOCKER_WAIT}"); do
  if docker_cli info >/dev/null 2>&1; then
    log "docker is ready (dockerd pid $(running_pid || echo '?'))"
    exit 0
  fi
  sleep 1
done
tail -n 20 "${DOCKERD_LOG}" >&2 2>/dev/null || true
die "docker info did not answer within ${DOCKER_WAIT}s"
