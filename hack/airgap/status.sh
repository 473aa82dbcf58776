#!/usr/bin/env bash
# Print what of the air-gapped toolchain is built and what is missing.
#
# Exit status 0 only if everything an air-gapped cluster and the Helm work
# need without building anything is present:
#   - the tools (kind, kubectl, helm, skaffold, kubeconform) in the cache
#     (kind-up and `make tools` copy them into bin/ from there),
#   - the kind node image (it carries every cluster image inside it),
#   - the PostgreSQL and Redis images.
# Intermediate artefacts (cached binaries, component images, base images)
# are listed too but are not required: the node image already contains
# what was built from them.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=0
row() { # row STATUS KIND NAME DETAIL
  printf '  %-9s %-13s %-58s %s\n' "$1" "$2" "$3" "$4"
}
check_file() { # check_file REQUIRED KIND NAME PATH
  if [[ -x "$4" ]]; then
    row ok "$2" "$3" "$(du -h "$4" | cut -f1)"
  else
    row "$([[ $1 == 1 ]] && echo MISSING || echo absent)" "$2" "$3" "${4/#${AIRGAP_CACHE}/\$AIRGAP_CACHE}"
    [[ $1 == 0 ]] || missing=$((missing + 1))
  fi
}
check_image() { # check_image REQUIRED IMAGE
  local size
  if size="$("${DOCKER}" image inspect -f '{{.Size}}' "$2" 2>/dev/null)"; then
    row ok image "$2" "$((size / 1000000)) MB"
  else
    row "$([[ $1 == 1 ]] && echo MISSING || echo absent)" image "$2" ""
    [[ $1 == 0 ]] || missing=$((missing + 1))
  fi
}

echo "Air-gapped kind toolchain (cache: ${AIRGAP_CACHE})"
echo "Required:"
for t in kind:"${KIND_VERSION}" kubectl:"${KUBERNETES_VERSION}" helm:"${HELM_VERSION}" \
  skaffold:"${SKAFFOLD_VERSION}" kubeconform:"${KUBECONFORM_VERSION}"; do
  check_file 1 tool "${t%%:*} ${t#*:}" "$(cache_dir tools "${t%%:*}/${t#*:}")/${t%%:*}"
done
if "${DOCKER}" info >/dev/null 2>&1; then
  check_image 1 "${AIRGAP_NODE_IMAGE}"
  check_image 1 "${POSTGRES_IMAGE}"
  check_image 1 "${REDIS_IMAGE}"
else
  row MISSING docker "engine" "docker info fails (hack/ensure-docker.sh starts it)"
  missing=$((missing + 1))
fi

echo "Intermediate (rebuilt only when the node image is rebuilt):"
K8S_BIN="$(cache_dir kubernetes "${KUBERNETES_VERSION}")/bin"
for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
  check_file 0 binary "${b} ${KUBERNETES_VERSION}" "${K8S_BIN}/${b}"
done
check_file 0 binary "pause ${PAUSE_VERSION}" "${K8S_BIN}/pause"
for c in etcd:"${ETCD_VERSION}" coredns:"${COREDNS_VERSION}" crictl:"${CRICTL_VERSION}" \
  metrics-server:"${METRICS_SERVER_VERSION}" local-path-provisioner:"${LOCAL_PATH_PROVISIONER_VERSION}"; do
  check_file 0 binary "${c%%:*} ${c#*:}" "$(cache_dir "${c%%:*}" "${c#*:}")/${c%%:*}"
done
if "${DOCKER}" info >/dev/null 2>&1; then
  check_image 0 "${MINBASE_IMAGE}"
  check_image 0 "${KIND_BASE_IMAGE}"
  while read -r image; do check_image 0 "${image}"; done < <(node_preload_images)
fi

echo "Disk:"
if [[ -d "${AIRGAP_CACHE}" ]]; then
  row "" cache "${AIRGAP_CACHE}" "$(du -sh "${AIRGAP_CACHE}" | cut -f1)"
fi
if "${DOCKER}" info >/dev/null 2>&1; then
  # Our images share layers (the Debian minbase, the kind base), so add up
  # their unique sizes plus the largest shared part once.
  total="$("${DOCKER}" system df -v 2>/dev/null | awk -v a="${IMAGE_REPO}/" -v b="${IMAGE_PREFIX}/" '
    function bytes(s,  n) {
      n = s + 0
      if (s ~ /kB$/) n *= 1e3; else if (s ~ /MB$/) n *= 1e6; else if (s ~ /GB$/) n *= 1e9
      return n
    }
    /^Images space usage/ { on = 1; next }
    /^$/ && seen { on = 0 }
    on && (index($1, a) == 1 || index($1, b) == 1) {
      seen = 1; u += bytes($(NF - 1)); s = bytes($(NF - 2)); if (s > m) m = s
    }
    END { printf "%.2f GB", (u + m) / 1e9 }')"
  row "" images "${IMAGE_REPO}/* and ${IMAGE_PREFIX}/* in the daemon" "${total}"
fi

echo "Cluster:"
if [[ -x "${KIND}" ]] && "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  row up cluster "${KIND_CLUSTER}" "mode $(cat "$(state_dir)/mode" 2>/dev/null || echo unknown)"
else
  row down cluster "${KIND_CLUSTER}" ""
fi

if [[ "${missing}" -gt 0 ]]; then
  echo "${missing} required artefact(s) missing: run 'make airgap-build'"
  exit 1
fi
echo "Everything needed for an air-gapped cluster is present."
