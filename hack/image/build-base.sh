#!/usr/bin/env bash
# Build a local Python base image from Debian packages, for machines that can
# neither find nor pull the official python image (no registry reachable).
#
#   debootstrap --variant=minbase <suite> + python3, python3-venv,
#   ca-certificates, tzdata, brought up to date (hack/lib/debian.sh).
#
# Python lives in /usr/bin here (the official image has it in /usr/local/bin);
# the Dockerfile uses `python3` from PATH and the same base for both stages, so
# either works.
#
# Cached by tag: an existing image built from this same recipe is kept.
# BASE_REBUILD=1 forces a rebuild.
#
# Environment: BASE_LOCAL_IMAGE (tag to build), DEBIAN_SUITE, DOCKER, BASE_REBUILD.
set -euo pipefail
# shellcheck source=hack/lib/debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian.sh"

BASE_LOCAL_IMAGE="${BASE_LOCAL_IMAGE:-storefront-base/python:3.11-bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
PACKAGES="python3,python3-venv,ca-certificates,tzdata"
# shellcheck source=hack/lib/docker.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/docker.sh"

log() { printf '[base-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The recipe is this script plus its inputs: a change to any of them makes the
# cached image stale.
recipe="$(
  { cat "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/../lib/debian.sh"; echo "${DEBIAN_SUITE} ${PACKAGES}"; } |
    sha256sum | cut -c1-16
)"
recipe_label="org.storefront.base.recipe"

if [[ "${BASE_REBUILD:-0}" != 1 ]] &&
  have="$("${DOCKER}" image inspect --format "{{ index .Config.Labels \"${recipe_label}\" }}" "${BASE_LOCAL_IMAGE}" 2>/dev/null)"; then
  if [[ "${have}" == "${recipe}" ]]; then
    log "${BASE_LOCAL_IMAGE}: present (recipe ${recipe})"
    exit 0
  fi
  log "${BASE_LOCAL_IMAGE}: built from another recipe (${have:-none}), rebuilding"
fi

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/storefront-base.XXXXXX")"
trap 'debian_rootfs_cleanup "${ROOTFS}"' EXIT

log "debootstrap --variant=minbase ${DEBIAN_SUITE} + ${PACKAGES}, with the host's updates and security fixes"
debian_rootfs "${ROOTFS}" "${DEBIAN_SUITE}" "${PACKAGES}" || die "building the ${DEBIAN_SUITE} root filesystem failed"

python_version="$(chroot "${ROOTFS}" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

log "importing ${BASE_LOCAL_IMAGE} (Python ${python_version})"
debian_import "${ROOTFS}" "${BASE_LOCAL_IMAGE}" \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL ${recipe_label}=${recipe}" \
    --change "LABEL org.opencontainers.image.title=python-${DEBIAN_SUITE}" \
    --change "LABEL org.opencontainers.image.description=\"Debian ${DEBIAN_SUITE} minbase with its python3 ${python_version}\"" \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase ${DEBIAN_SUITE} + ${PACKAGES}"
log "${BASE_LOCAL_IMAGE}: built ($("${DOCKER}" image inspect --format '{{.Size}}' "${BASE_LOCAL_IMAGE}" | numfmt --to=si)B)"
