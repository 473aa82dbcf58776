#!/usr/bin/env bash
# Build the Debian base image every other image starts FROM: a debootstrap
# minbase of $DEBIAN_SUITE, imported with `docker import` (no image can be
# pulled here); see hack/lib/debian.sh.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=hack/lib/debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian.sh"
build_lock

if image_exists "${MINBASE_IMAGE}"; then
  log "${MINBASE_IMAGE}: present"
  exit 0
fi
mkdir -p "${AIRGAP_CACHE}/tmp"
ROOTFS="$(mktemp -d "${AIRGAP_CACHE}/tmp/minbase.XXXXXX")"
trap 'debian_rootfs_cleanup "${ROOTFS}"' EXIT

log "debootstrap --variant=minbase ${DEBIAN_SUITE}, with the host's updates and security fixes"
debian_rootfs "${ROOTFS}" "${DEBIAN_SUITE}" || die "building the ${DEBIAN_SUITE} root filesystem failed"

log "importing ${MINBASE_IMAGE}"
debian_import "${ROOTFS}" "${MINBASE_IMAGE}" --change 'CMD ["bash"]'
log "${MINBASE_IMAGE}: built"
