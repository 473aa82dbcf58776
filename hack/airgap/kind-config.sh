#!/usr/bin/env bash
# Print the kind config to use: k8s/kind-config.yaml as is, or with the
# air-gapped differences added.
#
# Usage: kind-config.sh [--airgap] [CONFIG]
#   --airgap   kubeadm imageRepository "airgap" (our locally built images,
#              preloaded in the node image) and no default CNI (kindnetd
#              cannot be pulled; the node image has a static bridge config)
#
# No YAML tool is on the machines, so the common file follows a layout rule
# that this script checks: `kubeadmConfigPatches` is the last top-level key
# (we append list items to it). Air-gapped mode supports one node.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

airgap=0 config="${REPO_ROOT}/k8s/kind-config.yaml"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --airgap) airgap=1 ;;
    -*) die "unknown option $1" ;;
    *) config=$1 ;;
  esac
  shift
done
[[ -r "${config}" ]] || die "no kind config at ${config}"

if [[ "${airgap}" == 0 ]]; then
  cat "${config}"
  exit 0
fi

last_key="$(grep -E '^[A-Za-z]+:' "${config}" | tail -n 1 | cut -d: -f1)"
[[ "${last_key}" == kubeadmConfigPatches ]] ||
  die "${config}: kubeadmConfigPatches must be the last top-level key (found ${last_key})"
nodes="$(grep -cE '^[[:space:]]*-[[:space:]]*role:' "${config}" || true)"
[[ "${nodes}" -le 1 ]] || die "air-gapped mode supports one node only (static bridge CNI); ${config} has ${nodes}"
grep -qE '^networking:' "${config}" || die "${config}: needs a networking: section"
if grep -qE '^[[:space:]]+disableDefaultCNI:' "${config}"; then
  die "${config}: leave disableDefaultCNI to this script"
fi

sed -e '/^networking:/a\
  # air-gapped: no kindnetd image; the node image has a static bridge CNI\
  disableDefaultCNI: true' "${config}"
cat <<EOF
  # air-gapped: every control-plane image comes from the local "${IMAGE_REPO}"
  # repository preloaded in the node image (no registry host to pull from).
  - |
    kind: ClusterConfiguration
    imageRepository: ${IMAGE_REPO}
EOF
