#!/usr/bin/env bash
# Load local docker images into the kind cluster's node(s):
#   kind-load.sh IMAGE [IMAGE...]      (make kind-load IMAGE="a:1 b:2")
# `kind load docker-image` runs `docker exec --privileged` in the node, so on
# hosts without --privileged it goes through docker-wrapper/docker.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -gt 0 ]] || die "usage: kind-load.sh IMAGE [IMAGE...]"
"${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}" ||
  die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"

# kind-up.sh recorded whether the wrapper was needed; without that record
# (state lost, cluster made by hand) try the node's own image.
STATE="$(state_dir)"
if [[ ! -f "${STATE}/unprivileged" ]]; then
  node_image="$("${DOCKER}" inspect -f '{{.Config.Image}}' "${KIND_CLUSTER}-control-plane" 2>/dev/null || true)"
  if [[ -n "${node_image}" ]] && ! privileged_works "${node_image}"; then
    mkdir -p "${STATE}"
    touch "${STATE}/unprivileged"
  fi
fi
if [[ -f "${STATE}/unprivileged" ]]; then
  export PATH="${AIRGAP_DIR}/docker-wrapper:${PATH}"
  export AIRGAP_REAL_DOCKER="${DOCKER}"
fi

for image in "$@"; do
  image_exists "${image}" || die "no local image ${image} (docker build it first)"
  "${KIND}" load docker-image "${image}" --name "${KIND_CLUSTER}"
done
