#!/bin/sh
# postStart hook of the bundled PostgreSQL: at EVERY start (not only at
# initdb), create or update the owner and app roles with the passwords of the
# mounted Secret, so a changed or re-generated Secret never locks the app out
# of an existing data directory. Works with any image that keeps the official
# image's contract: trust on the local socket, psql and pg_isready on PATH.
set -eu

: "${STOREFRONT_DATABASE:?}" "${STOREFRONT_OWNER_ROLE:?}" "${STOREFRONT_APP_ROLE:?}"
credentials="${STOREFRONT_CREDENTIALS_DIR:-/var/run/secrets/postgresql}"
socket_dir="${STOREFRONT_SOCKET_DIR:-/var/run/postgresql}"
port="${PGPORT:-5432}"
superuser="${POSTGRES_USER:-postgres}"
wait_seconds="${STOREFRONT_ROLES_WAIT_SECONDS:-300}"
here="$(dirname "$0")"

# A hook's output is not in the container log: write to the server's
# (PID 1's) stderr when we can, so `kubectl logs` shows what happened.
log_target="${STOREFRONT_LOG:-/proc/1/fd/2}"
log() {
  if [ -w "${log_target}" ]; then
    echo "ensure-roles: $*" >>"${log_target}"
  else
    echo "ensure-roles: $*" >&2
  fi
}

# Only the final server listens on TCP: the image's temporary server during
# initdb is socket-only, and roles created there could race its shutdown.
deadline=$(( $(date +%s) + wait_seconds ))
# (-U: libpq cannot guess a user name for a UID without a passwd entry.)
until pg_isready -q -h 127.0.0.1 -p "${port}" -U "${superuser}" -d postgres; do
  if [ "$(date +%s)" -ge "${deadline}" ]; then
    log "PostgreSQL did not accept TCP connections within ${wait_seconds}s"
    exit 1
  fi
  sleep 1
done

if ! output="$(psql -X -q -v ON_ERROR_STOP=1 -h "${socket_dir}" -p "${port}" -U "${superuser}" -d postgres \
  -v db="${STOREFRONT_DATABASE}" -v owner="${STOREFRONT_OWNER_ROLE}" -v app="${STOREFRONT_APP_ROLE}" \
  -v owner_password_file="${credentials}/owner-password" -v app_password_file="${credentials}/password" \
  -f "${here}/ensure-roles.sql" 2>&1)"; then
  log "failed: ${output}"
  exit 1
fi
log "roles ${STOREFRONT_OWNER_ROLE} (owner) and ${STOREFRONT_APP_ROLE} (app) applied to database ${STOREFRONT_DATABASE}"
