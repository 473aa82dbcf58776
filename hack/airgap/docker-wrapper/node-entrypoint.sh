#!/bin/bash
# Runs as PID 1 of a kind node started through docker-wrapper/docker (hosts
# where --privileged is refused), before the image's own entrypoint.
#
# Why: without --privileged, docker mounts /sys/fs/cgroup and every cgroup
# hierarchy below it read-only; systemd and kubelet in the node must create
# cgroups there. Remount each one read-write: "bind" changes only this
# mount's flags, never the host's cgroup filesystem itself.
set -euo pipefail

while read -r target fstype; do
  case "${fstype}" in
    cgroup | cgroup2 | tmpfs)
      [[ "${target}" == /sys/fs/cgroup* ]] || continue
      mount -o remount,bind,rw "${target}" 2>/dev/null || mount -o remount,rw "${target}"
      ;;
  esac
done < <(findmnt -rn -o TARGET,FSTYPE)

exec "$@"
