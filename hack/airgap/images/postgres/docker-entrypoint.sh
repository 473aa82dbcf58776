#!/usr/bin/env bash
# Entrypoint of storefront-airgap/postgres:<major>, written for this repository.
# It follows the environment contract of the official `postgres` image so
# that charts and compose files written for it work unchanged:
#
#   POSTGRES_PASSWORD   superuser password (required unless
#                       POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER       superuser name (default: postgres)
#   POSTGRES_DB         database created at init (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR   extra initdb options
#   POSTGRES_HOST_AUTH_METHOD   pg_hba method for remote hosts
#                       (default: scram-sha-256)
#   PGDATA              data directory (default: /var/lib/postgresql/data)
#   <VAR>_FILE          read <VAR> from a file (mounted secrets)
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz   run once, at init
#
# Arguments: `postgres [server options]`, or only server options such as
# `-c max_connections=200` (then `postgres` is implied); any other command
# (psql, bash, ...) is run as given.
#
# Any non-root UID works (e.g. runAsUser 10001): initdb gets a passwd entry
# for it through nss_wrapper (below); the server itself needs none.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +'%F %T UTC')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# file_env VAR [DEFAULT]: export VAR from $VAR or from the file named by
# $VAR_FILE (never both), else DEFAULT.
file_env() {
  local var=$1 default=${2:-} file_var="${1}_FILE" value
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    die "both ${var} and ${file_var} are set; use one"
  fi
  value=${default}
  if [[ -n "${!var:-}" ]]; then
    value=${!var}
  elif [[ -n "${!file_var:-}" ]]; then
    value=$(<"${!file_var}")
  fi
  export "${var}=${value}"
  unset "${file_var}"
}

# Options only: the server is the implied command.
if [[ $# -eq 0 || "$1" == -* ]]; then
  set -- postgres "$@"
fi
if [[ "$1" != postgres ]]; then
  exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# Started as root (e.g. `docker run --user 0`, or a volume that needs its
# ownership fixed): prepare the directories, then run this script again as
# the postgres user. The server itself refuses to run as root.
if [[ "$(id -u)" == 0 ]]; then
  mkdir -p "${PGDATA}" /var/run/postgresql
  chown postgres:postgres "${PGDATA}" /var/run/postgresql
  chmod 0700 "${PGDATA}"
  chmod 3777 /var/run/postgresql
  if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
    mkdir -p "${POSTGRES_INITDB_WALDIR}"
    chown postgres:postgres "${POSTGRES_INITDB_WALDIR}"
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

init_database() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "${POSTGRES_USER}"
  file_env POSTGRES_INITDB_ARGS
  local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

  if [[ -z "${POSTGRES_PASSWORD}" && "${auth}" != trust ]]; then
    die "the database is not initialised and no superuser password is set:
  set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or
  POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one"
  fi
  if [[ "${auth}" == trust ]]; then
    log "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: anyone who can reach port 5432 is superuser"
  fi

  mkdir -p "${PGDATA}"
  chmod 0700 "${PGDATA}" 2>/dev/null || true

  # initdb looks its own UID up in passwd; an arbitrary UID has no entry.
  with_passwd_entry

  local -a args=(--username="${POSTGRES_USER}" -D "${PGDATA}")
  local -a extra=()
  [[ -z "${POSTGRES_INITDB_WALDIR:-}" ]] || args+=(--waldir="${POSTGRES_INITDB_WALDIR}")
  # POSTGRES_INITDB_ARGS is a string of options, split on whitespace like the
  # official image does (e.g. "--data-checksums --locale=C").
  read -r -a extra <<<"${POSTGRES_INITDB_ARGS}"
  log "initdb in ${PGDATA}"
  if [[ -n "${POSTGRES_PASSWORD}" ]]; then
    initdb "${args[@]}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") "${extra[@]}"
  else
    initdb "${args[@]}" "${extra[@]}"
  fi

  # Remote clients authenticate with $auth; local socket connections keep
  # initdb's trust so health checks (pg_isready, psql) work in the container.
  printf '\nhost all all all %s\n' "${auth}" >>"${PGDATA}/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"${PGDATA}/postgresql.conf"

  # A server on the socket only, so nobody connects before init is done.
  pg_ctl -D "${PGDATA}" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null

  local -a psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "${POSTGRES_USER}")
  if [[ "${POSTGRES_DB}" != postgres ]]; then
    log "creating database ${POSTGRES_DB}"
    "${psql[@]}" --dbname postgres --set db="${POSTGRES_DB}" <<<'CREATE DATABASE :"db";' >/dev/null
  fi

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e "${f}" ]] || continue
    case "${f}" in
      *.sh)
        if [[ -x "${f}" ]]; then
          log "running ${f}"
          "${f}"
        else
          log "sourcing ${f}"
          # shellcheck disable=SC1090 # user-supplied init script
          . "${f}"
        fi
        ;;
      *.sql) log "running ${f}"; "${psql[@]}" --dbname "${POSTGRES_DB}" -f "${f}" ;;
      *.sql.gz) log "running ${f}"; gunzip -c "${f}" | "${psql[@]}" --dbname "${POSTGRES_DB}" ;;
      *) log "ignoring ${f}" ;;
    esac
  done

  pg_ctl -D "${PGDATA}" -m fast -w stop >/dev/null
  without_passwd_entry
  log "init complete"
}

# with_passwd_entry: when the current UID has no passwd entry, give it one
# named postgres through nss_wrapper (LD_PRELOAD), in files under /tmp (a
# writable volume when the root filesystem is read-only). The official image
# does the same, for initdb only.
with_passwd_entry() {
  getent passwd "$(id -u)" >/dev/null 2>&1 && return 0
  local wrapper
  for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    [[ -s "${wrapper}" ]] || continue
    NSS_WRAPPER_PASSWD="$(mktemp)"
    NSS_WRAPPER_GROUP="$(mktemp)"
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "${PGDATA}" >"${NSS_WRAPPER_PASSWD}"
    printf 'postgres:x:%s:\n' "$(id -g)" >"${NSS_WRAPPER_GROUP}"
    export LD_PRELOAD="${wrapper}" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    return 0
  done
  die "UID $(id -u) has no passwd entry and libnss_wrapper.so is missing"
}

without_passwd_entry() {
  [[ -n "${NSS_WRAPPER_PASSWD:-}" ]] || return 0
  rm -f "${NSS_WRAPPER_PASSWD}" "${NSS_WRAPPER_GROUP}"
  unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
}

if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
  init_database
fi

exec "$@"
