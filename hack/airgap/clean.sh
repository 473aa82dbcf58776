#!/usr/bin/env bash
# Remove what the air-gapped build produced: every image under the
# "airgap/" and "storefront-airgap/" repositories (all versions), the cache
# directory $AIRGAP_CACHE, and the tools it installed into bin/.
# Left alone: the Go module and build caches (shared with all Go work on
# the machine) and docker's build cache (shared with other projects).
# Refuses while a kind cluster made from these images is running.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

if [[ -n "$("${DOCKER}" ps -aq --filter "label=io.x-k8s.kind.cluster=${KIND_CLUSTER}")" ]]; then
  die "cluster ${KIND_CLUSTER} is running: make kind-down first"
fi

mapfile -t images < <("${DOCKER}" images --format '{{.Repository}}:{{.Tag}}' |
  awk -v a="${IMAGE_REPO}/" -v b="${IMAGE_PREFIX}/" 'index($0, a) == 1 || index($0, b) == 1')
if [[ ${#images[@]} -gt 0 ]]; then
  log "removing ${#images[@]} images"
  "${DOCKER}" rmi "${images[@]}" >/dev/null
fi

if [[ -d "${AIRGAP_CACHE}" ]]; then
  log "removing ${AIRGAP_CACHE} ($(du -sh "${AIRGAP_CACHE}" | cut -f1))"
  # The Go module cache marks files read-only; our wrapper-module sources
  # are plain files, but make sure everything can be deleted.
  chmod -R u+w "${AIRGAP_CACHE}"
  rm -rf "${AIRGAP_CACHE}"
fi

for t in kind kubectl helm skaffold kubeconform; do
  if [[ -f "${BIN_DIR}/${t}" ]]; then
    rm -f "${BIN_DIR}/${t}"
    log "removed ${BIN_DIR}/${t}"
  fi
done
rmdir "${BIN_DIR}" 2>/dev/null || true
