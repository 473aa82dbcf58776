#!/usr/bin/env bash
# Entrypoint of storefront-airgap/redis:<major>, written for this repository.
# Behaves like the official `redis` image's:
#   - arguments that start with "-" or name a *.conf file are arguments of
#     redis-server (`docker run IMAGE --maxmemory 100mb`);
#   - the server runs as the image user (uid 999) or any other non-root
#     UID; started as root it fixes the ownership of /data first and then
#     drops to the redis user;
#   - protected mode is off unless the arguments or the config file set it,
#     as the official image builds Redis with it off by default (the
#     container's network boundary is the protection).
set -Eeuo pipefail

if [[ $# -eq 0 || "$1" == -* || "$1" == *.conf ]]; then
  set -- redis-server "$@"
fi

if [[ "$1" == redis-server && "$(id -u)" == 0 ]]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ "$1" == redis-server ]]; then
  # Debian's redis-server compiles protected mode in as "yes"; add
  # "--protected-mode no" unless the user chose a value.
  chosen=""
  for arg in "${@:2}"; do
    if [[ "${arg}" == --protected-mode ]]; then chosen=1; fi
    if [[ "${arg}" == *.conf && -r "${arg}" ]] && grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "${arg}"; then
      chosen=1
    fi
  done
  if [[ -z "${chosen}" ]]; then
    set -- "$@" --protected-mode no
  fi
fi

exec "$@"
