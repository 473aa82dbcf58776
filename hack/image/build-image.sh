#!/usr/bin/env bash
# Build the service image (`make image`; the variables come from image.mk).
#
# Base image: BASE_IMAGE when set; otherwise the official python image if it
# is present or can be pulled within BASE_PULL_TIMEOUT seconds; otherwise the
# Debian-built BASE_LOCAL_IMAGE (built once by build-base.sh, then cached).
#
# The machine's CA bundle reaches pip and uv inside the build as a BuildKit
# secret, never as a file in the context or a layer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${here}/../.."

: "${IMAGE:?IMAGE (the reference to build) must be set}"
: "${UV_VERSION:?UV_VERSION must be set}"
BASE_IMAGE="${BASE_IMAGE:-}"
BASE_IMAGE_OFFICIAL="${BASE_IMAGE_OFFICIAL:-python:3.11-slim-bookworm}"
BASE_LOCAL_IMAGE="${BASE_LOCAL_IMAGE:-storefront-base/python:3.11-bookworm}"
BASE_PULL_TIMEOUT="${BASE_PULL_TIMEOUT:-15}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
VERSION="${VERSION:-0.0.0}"
IMAGE_BUILD_FLAGS="${IMAGE_BUILD_FLAGS:-}"
# shellcheck source=hack/lib/docker.sh
. "${here}/../lib/docker.sh"
export DOCKER BASE_LOCAL_IMAGE

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bash "${here}/docker-ready.sh"
[[ -r "${CA_BUNDLE}" ]] || die "CA bundle ${CA_BUNDLE} is not readable (set CA_BUNDLE)"

present() { "${DOCKER}" image inspect "$1" >/dev/null 2>&1; }

if [[ -n "${BASE_IMAGE}" ]]; then
  if [[ "${BASE_IMAGE}" == "${BASE_LOCAL_IMAGE}" ]]; then
    bash "${here}/build-base.sh"
  fi
  base="${BASE_IMAGE}"
elif present "${BASE_IMAGE_OFFICIAL}"; then
  base="${BASE_IMAGE_OFFICIAL}"
elif timeout "${BASE_PULL_TIMEOUT}" "${DOCKER}" pull --quiet "${BASE_IMAGE_OFFICIAL}" >/dev/null 2>&1; then
  log "pulled ${BASE_IMAGE_OFFICIAL}"
  base="${BASE_IMAGE_OFFICIAL}"
else
  log "${BASE_IMAGE_OFFICIAL} is neither present nor pullable: using ${BASE_LOCAL_IMAGE}"
  bash "${here}/build-base.sh"
  base="${BASE_LOCAL_IMAGE}"
fi

revision="$(bash "${here}/image-ref.sh" revision)"
created="${IMAGE_CREATED:-$(bash "${here}/image-ref.sh" created)}"

log "building ${IMAGE} from ${base}"
# The Debian client (/usr/bin/docker) builds with BuildKit without buildx.
# shellcheck disable=SC2086  # IMAGE_BUILD_FLAGS is a list of flags
DOCKER_BUILDKIT=1 "${DOCKER}" build \
  --secret "id=ca,src=${CA_BUNDLE}" \
  --build-arg "BASE_IMAGE=${base}" \
  --build-arg "UV_VERSION=${UV_VERSION}" \
  --build-arg "VERSION=${VERSION}" \
  --build-arg "REVISION=${revision}" \
  --build-arg "CREATED=${created}" \
  --tag "${IMAGE}" \
  ${IMAGE_BUILD_FLAGS} \
  .
log "built ${IMAGE} ($("${DOCKER}" image inspect --format '{{.Size}}' "${IMAGE}" | numfmt --to=si)B)"
