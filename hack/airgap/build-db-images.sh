#!/usr/bin/env bash
# Build the local PostgreSQL and Redis images from Debian packages
# ($POSTGRES_IMAGE, $REDIS_IMAGE: storefront-airgap/postgres:15 and
# storefront-airgap/redis:7 by default). Skipped when the tag exists.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

"${AIRGAP_DIR}/build-minbase.sh"

for pair in "${POSTGRES_IMAGE}=postgres" "${REDIS_IMAGE}=redis"; do
  image="${pair%=*}"
  dir="${AIRGAP_DIR}/images/${pair#*=}"
  if image_exists "${image}"; then
    log "${image}: present"
    continue
  fi
  log "${image}: building"
  # The directory holds only the Dockerfile and the entrypoint: it is the
  # whole build context.
  docker_build "${image}" "${dir}" || die "docker build of ${image} failed"
done
