#!/usr/bin/env bash
# Build everything an air-gapped cluster needs, in order, skipping whatever
# is already built (cache by version, images by tag):
#   1. tools (helm, skaffold, kubeconform, kind, kubectl) into bin/
#   2. Kubernetes binaries (wrapper module over k8s.io/kubernetes) + pause
#   3. component binaries (etcd, CoreDNS, crictl, metrics-server,
#      local-path-provisioner)
#   4. the Debian minbase and every cluster image
#   5. the kind base and node images
#   6. the PostgreSQL and Redis images
# Prints the time each step took.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

step() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  log "== ${name}"
  "$@"
  log "== ${name}: $(($(date +%s) - t0))s"
}

all0=$(date +%s)
step tools "${AIRGAP_DIR}/build-tools.sh"
step kubernetes "${AIRGAP_DIR}/build-k8s.sh"
step components "${AIRGAP_DIR}/build-components.sh"
step images "${AIRGAP_DIR}/build-images.sh"
step node-image "${AIRGAP_DIR}/build-node-image.sh"
step db-images "${AIRGAP_DIR}/build-db-images.sh"
log "airgap-build done in $(($(date +%s) - all0))s"
