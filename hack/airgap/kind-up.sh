#!/usr/bin/env bash
# Create the kind cluster $KIND_CLUSTER (default "storefront") and deploy
# metrics-server, then wait until every kube-system pod is Ready.
#
#   AIRGAP=0     internet mode: kind's stock node image, nothing is built
#                (but metrics-server's image, see below)
#   AIRGAP=1     air-gapped mode: build or reuse our node image (cached)
#   AIRGAP=auto  (default) internet mode if the stock node image is present
#                or can be pulled within $AIRGAP_PROBE_TIMEOUT seconds,
#                else air-gapped mode
#
# On hosts that refuse `docker run --privileged` (detected by trying), kind
# runs with docker-wrapper/docker first on PATH.
# Idempotent: an existing cluster is kept and only checked.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AIRGAP="${AIRGAP:-auto}"
AIRGAP_PROBE_TIMEOUT="${AIRGAP_PROBE_TIMEOUT:-20}"
KIND_CONFIG="${KIND_CONFIG:-${REPO_ROOT}/k8s/kind-config.yaml}"
KIND_WAIT="${KIND_WAIT:-5m}"
CONTEXT="kind-${KIND_CLUSTER}"
STATE="$(state_dir)"
start=$(date +%s)

"${AIRGAP_DIR}/build-tools.sh" kind kubectl

# --- mode ------------------------------------------------------------------
case "${AIRGAP}" in
  1 | true | yes) mode=airgap ;;
  0 | false | no) mode=internet ;;
  auto)
    if image_exists "${KIND_STOCK_NODE_IMAGE}"; then
      mode=internet
    else
      log "probing for a registry: docker pull ${KIND_STOCK_NODE_IMAGE} (at most ${AIRGAP_PROBE_TIMEOUT}s)"
      # A bounded pull is the probe: it fails within seconds when no
      # registry is reachable, and in internet mode we need the image anyway.
      if timeout "${AIRGAP_PROBE_TIMEOUT}" "${DOCKER}" pull -q "${KIND_STOCK_NODE_IMAGE}" >/dev/null 2>&1; then
        mode=internet
      else
        mode=airgap
      fi
    fi
    ;;
  *) die "AIRGAP must be 1, 0 or auto (got ${AIRGAP})" ;;
esac
log "mode: ${mode}"

mkdir -p "${STATE}"
if [[ "${mode}" == airgap ]]; then
  "${AIRGAP_DIR}/build-node-image.sh"
  node_image="${AIRGAP_NODE_IMAGE}"
  "${AIRGAP_DIR}/kind-config.sh" --airgap "${KIND_CONFIG}" >"${STATE}/kind-config.yaml"
else
  node_image="${KIND_STOCK_NODE_IMAGE}"
  image_exists "${node_image}" || "${DOCKER}" pull "${node_image}"
  "${AIRGAP_DIR}/kind-config.sh" "${KIND_CONFIG}" >"${STATE}/kind-config.yaml"
fi
echo "${mode}" >"${STATE}/mode"

# --- docker wrapper for hosts without --privileged ---------------------------------
if [[ -f "${STATE}/unprivileged" ]] || ! privileged_works "${node_image}"; then
  log "docker run --privileged is refused on this host: kind runs through hack/airgap/docker-wrapper"
  touch "${STATE}/unprivileged"
  export PATH="${AIRGAP_DIR}/docker-wrapper:${PATH}"
  export AIRGAP_REAL_DOCKER="${DOCKER}"
fi

# --- cluster -----------------------------------------------------------------------
if "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  log "cluster ${KIND_CLUSTER} already exists: keeping it"
else
  # kubelet writes a few host-wide sysctls when it starts (the node shares
  # the host kernel); remember them so kind-down.sh can restore them.
  if ! kind_nodes_running && [[ ! -f "${HOST_SYSCTL_FILE}" ]]; then
    sysctl "${HOST_SYSCTLS[@]}" 2>/dev/null | sed 's/ = /=/' >"${HOST_SYSCTL_FILE}" || true
  fi
  log "creating cluster ${KIND_CLUSTER} from ${node_image}"
  if ! "${KIND}" create cluster --name "${KIND_CLUSTER}" --image "${node_image}" \
    --config "${STATE}/kind-config.yaml" --wait "${KIND_WAIT}"; then
    log "kind create cluster failed; cleaning up (KIND_KEEP_ON_FAILURE=1 keeps the state)"
    [[ "${KIND_KEEP_ON_FAILURE:-0}" == 1 ]] || "${AIRGAP_DIR}/kind-down.sh"
    exit 1
  fi
fi

# --- metrics-server ----------------------------------------------------------------
# The air-gapped node image carries its image. Otherwise load it when it is
# one of ours (built here if missing); an image from elsewhere
# (METRICS_SERVER_IMAGE=...) is left for the node to pull.
if [[ "${mode}" == internet ]]; then
  if [[ "${METRICS_SERVER_IMAGE}" == "${IMAGE_REPO}/"* ]]; then
    image_exists "${METRICS_SERVER_IMAGE}" || "${AIRGAP_DIR}/build-images.sh" metrics-server
  fi
  if image_exists "${METRICS_SERVER_IMAGE}"; then
    "${KIND}" load docker-image "${METRICS_SERVER_IMAGE}" --name "${KIND_CLUSTER}"
  fi
fi
sed "s|@METRICS_SERVER_IMAGE@|${METRICS_SERVER_IMAGE}|g" "${AIRGAP_DIR}/manifests/metrics-server.yaml" |
  "${KUBECTL}" --context "${CONTEXT}" apply -f - >/dev/null

# --- wait until usable -------------------------------------------------------------
log "waiting for kube-system pods and the default StorageClass"
deadline=$(($(date +%s) + 300))
until "${KUBECTL}" --context "${CONTEXT}" -n kube-system wait --for=condition=Ready pod --all --timeout=10s >/dev/null 2>&1; do
  # New pods can appear while we wait (CoreDNS, metrics-server): retry.
  if (($(date +%s) > deadline)); then
    "${KUBECTL}" --context "${CONTEXT}" get pods -A -o wide >&2 || true
    die "kube-system pods not Ready after 5 minutes"
  fi
  sleep 2
done
"${KUBECTL}" --context "${CONTEXT}" -n kube-system rollout status deploy/metrics-server --timeout=120s >/dev/null
"${KUBECTL}" --context "${CONTEXT}" get storageclass -o name | grep -q . || die "no StorageClass in the cluster"

log "cluster ${KIND_CLUSTER} is up (${mode} mode, context ${CONTEXT}) in $(($(date +%s) - start))s"
