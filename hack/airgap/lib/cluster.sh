# shellcheck shell=bash
# The kind cluster $KIND_CLUSTER: mode, config, create, delete, image loading.
#
#   AIRGAP=0     internet mode: kind's stock node image and its default CNI
#                (kindnetd, which also enforces NetworkPolicy)
#   AIRGAP=1     air-gapped mode: our node image (built or reused), whose
#                default CNI is flannel + kube-network-policies
#   AIRGAP=auto  (default) internet mode if the stock node image is present
#                or can be pulled within $AIRGAP_PROBE_TIMEOUT seconds
#
# Commands: airgap up | down | load IMAGE... | mode | kind-config [--airgap] | kind-path

CONTEXT="kind-${KIND_CLUSTER}"
KIND_CONFIG="${KIND_CONFIG:-${REPO_ROOT}/k8s/kind-config.yaml}"
# Host sysctls that kubelet rewrites at start (it runs with the host's
# kernel): saved before the first kind node starts, restored after the last
# one is gone. Shared by all clusters on the host.
HOST_SYSCTL_FILE="${TMPDIR:-/tmp}/storefront-kind-host-sysctls"
HOST_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

kc() { "${KUBECTL}" --context "${CONTEXT}" "$@"; }

cluster_exists() { [[ -x "${KIND}" ]] && "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; }

# kind_nodes_running: are there kind node containers (any cluster)?
kind_nodes_running() { [[ -n "$("${DOCKER}" ps -aq --filter label=io.x-k8s.kind.cluster 2>/dev/null)" ]]; }

# privileged_works IMAGE: can this host run `docker run --privileged`?
# Decided by trying, with the node image itself, so no other image is needed.
privileged_works() {
  timeout 120 "${DOCKER}" run --rm --privileged --network none --entrypoint true "$1" >/dev/null 2>&1
}

# cluster_mode: "airgap" or "internet". The running cluster's mode when
# there is one (recorded by `up`, or read from its node image), else the
# decision `up` would make now.
cluster_mode() {
  local state image
  state="$(state_dir)/mode"
  if cluster_exists; then
    if [[ -r "${state}" ]]; then cat "${state}"; return 0; fi
    image="$("${DOCKER}" inspect -f '{{.Config.Image}}' "${KIND_CLUSTER}-control-plane" 2>/dev/null || true)"
    if [[ "${image}" == "${IMAGE_PREFIX}/"* ]]; then echo airgap; else echo internet; fi
    return 0
  fi
  case "${AIRGAP:-auto}" in
    1 | true | yes) echo airgap ;;
    0 | false | no) echo internet ;;
    auto)
      if image_exists "${KIND_STOCK_NODE_IMAGE}"; then
        echo internet
      else
        log "probing for a registry: docker pull ${KIND_STOCK_NODE_IMAGE} (at most ${AIRGAP_PROBE_TIMEOUT:-20}s)"
        # A bounded pull is the probe: it fails within seconds when no
        # registry is reachable, and in internet mode we need the image anyway.
        if timeout "${AIRGAP_PROBE_TIMEOUT:-20}" "${DOCKER}" pull -q "${KIND_STOCK_NODE_IMAGE}" >/dev/null 2>&1; then
          echo internet
        else
          echo airgap
        fi
      fi
      ;;
    *) die "AIRGAP must be 1, 0 or auto (got ${AIRGAP})" ;;
  esac
}

# kind_config [--airgap] [CONFIG]: print the kind config to use: the common
# file as is, or with imageRepository "airgap" (our images, preloaded in the
# node image) appended. No YAML tool is on the machines, so the common file
# follows a layout rule checked here: `kubeadmConfigPatches` is the last
# top-level key (we append list items to it).
kind_config() {
  local airgap=0 config="${KIND_CONFIG}" last_key
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
    return 0
  fi
  last_key="$(grep -E '^[A-Za-z]+:' "${config}" | tail -n 1 | cut -d: -f1)"
  [[ "${last_key}" == kubeadmConfigPatches ]] ||
    die "${config}: kubeadmConfigPatches must be the last top-level key (found ${last_key})"
  cat "${config}"
  cat <<YAML
  # air-gapped: every control-plane image comes from the local "${IMAGE_REPO}"
  # repository preloaded in the node image (no registry host to pull from).
  - |
    kind: ClusterConfiguration
    imageRepository: ${IMAGE_REPO}
YAML
}

# use_docker_wrapper NODE_IMAGE: put docker-wrapper/docker first on PATH when
# this host refuses `docker run --privileged` (kind hard-codes it).
use_docker_wrapper() {
  local state
  state="$(state_dir)"
  mkdir -p "${state}"
  if [[ ! -f "${state}/unprivileged" && ! -f "${state}/privileged" ]]; then
    if privileged_works "$1"; then touch "${state}/privileged"; else touch "${state}/unprivileged"; fi
  fi
  if [[ -f "${state}/unprivileged" ]]; then
    export PATH="${AIRGAP_DIR}/docker-wrapper:${PATH}"
    export AIRGAP_REAL_DOCKER="${DOCKER}"
  fi
}

# kind_path: the directory to put first on PATH for other tools that run
# kind against the running cluster (skaffold's `kind load docker-image` runs
# `docker exec --privileged`): the docker wrapper on hosts that refuse
# --privileged, nothing elsewhere.
kind_path() {
  local node_image
  cluster_exists || die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"
  node_image="$("${DOCKER}" inspect -f '{{.Config.Image}}' "${KIND_CLUSTER}-control-plane")"
  use_docker_wrapper "${node_image}"
  if [[ -f "$(state_dir)/unprivileged" ]]; then
    printf '%s\n' "${AIRGAP_DIR}/docker-wrapper"
  fi
}

cluster_up() {
  local start mode node_image state deadline
  start=$(date +%s)
  state="$(state_dir)"
  tools_install kind kubectl
  mode="$(cluster_mode)"
  log "mode: ${mode}"
  mkdir -p "${state}"
  if [[ "${mode}" == airgap ]]; then
    locked node_image_build
    node_image="${AIRGAP_NODE_IMAGE}"
    kind_config --airgap >"${state}/kind-config.yaml"
  else
    node_image="${KIND_STOCK_NODE_IMAGE}"
    image_exists "${node_image}" || "${DOCKER}" pull "${node_image}"
    kind_config >"${state}/kind-config.yaml"
  fi
  echo "${mode}" >"${state}/mode"
  use_docker_wrapper "${node_image}"
  [[ -f "${state}/privileged" ]] ||
    log "docker run --privileged is refused on this host: kind runs through hack/airgap/docker-wrapper"

  if cluster_exists; then
    log "cluster ${KIND_CLUSTER} already exists: keeping it"
  else
    # kubelet writes a few host-wide sysctls when it starts (the node shares
    # the host kernel); remember them so `down` can restore them.
    if ! kind_nodes_running && [[ ! -f "${HOST_SYSCTL_FILE}" ]]; then
      sysctl "${HOST_SYSCTLS[@]}" 2>/dev/null | sed 's/ = /=/' >"${HOST_SYSCTL_FILE}" || true
    fi
    log "creating cluster ${KIND_CLUSTER} from ${node_image}"
    if ! "${KIND}" create cluster --name "${KIND_CLUSTER}" --image "${node_image}" \
      --config "${state}/kind-config.yaml" --wait "${KIND_WAIT:-5m}"; then
      log "kind create cluster failed; cleaning up (KIND_KEEP_ON_FAILURE=1 keeps the state)"
      [[ "${KIND_KEEP_ON_FAILURE:-0}" == 1 ]] || cluster_down
      exit 1
    fi
  fi

  # metrics-server: the air-gapped node image carries its image. Otherwise
  # load it when it is one of ours (built here if missing); an image from
  # elsewhere (METRICS_SERVER_IMAGE=...) is left for the nodes to pull.
  if [[ "${mode}" == internet && "${METRICS_SERVER_IMAGE}" == "${IMAGE_REPO}/"* ]]; then
    image_exists "${METRICS_SERVER_IMAGE}" || locked cluster_images_build metrics-server
    "${KIND}" load docker-image "${METRICS_SERVER_IMAGE}" --name "${KIND_CLUSTER}"
  fi
  sed "s|@METRICS_SERVER_IMAGE@|${METRICS_SERVER_IMAGE}|g" "${AIRGAP_DIR}/manifests/metrics-server.yaml" |
    kc apply -f - >/dev/null

  log "waiting for every node, the kube-system pods and the default StorageClass"
  deadline=$(($(date +%s) + 300))
  # New pods can appear while we wait (CoreDNS, metrics-server): retry.
  until kc wait --for=condition=Ready node --all --timeout=10s >/dev/null 2>&1 &&
    kc -n kube-system wait --for=condition=Ready pod --all --timeout=10s >/dev/null 2>&1; do
    if (($(date +%s) > deadline)); then
      kc get nodes -o wide >&2 || true
      kc get pods -A -o wide >&2 || true
      die "nodes or kube-system pods not Ready after 5 minutes"
    fi
    sleep 2
  done
  kc -n kube-system rollout status deploy/metrics-server --timeout=120s >/dev/null
  kc get storageclass -o name | grep -q . || die "no StorageClass in the cluster"
  log "cluster ${KIND_CLUSTER} is up: $(kc get nodes --no-headers | wc -l) nodes, ${mode} mode, context ${CONTEXT}, in $(($(date +%s) - start))s"
}

# cluster_down: delete the cluster; with no kind node left on the host, also
# kind's docker network and the host sysctls kubelet rewrote. Built images
# and the cache stay. Safe to run when there is no cluster.
cluster_down() {
  local ids key value
  if cluster_exists; then
    # `kind delete` never asks for --privileged, so no wrapper is needed.
    "${KIND}" delete cluster --name "${KIND_CLUSTER}"
  else
    # Without the kind binary (or a registered cluster) remove the node
    # containers by kind's cluster label directly.
    ids="$("${DOCKER}" ps -aq --filter "label=io.x-k8s.kind.cluster=${KIND_CLUSTER}")"
    if [[ -n "${ids}" ]]; then
      log "removing leftover node containers of ${KIND_CLUSTER}"
      # shellcheck disable=SC2086 # one id per word
      "${DOCKER}" rm -f -v ${ids} >/dev/null
    fi
    log "no cluster ${KIND_CLUSTER}"
  fi
  if ! kind_nodes_running; then
    # kind creates the "kind" network on first use and never removes it.
    if "${DOCKER}" network inspect kind >/dev/null 2>&1 &&
      [[ "$("${DOCKER}" network inspect -f '{{len .Containers}}' kind)" == 0 ]]; then
      "${DOCKER}" network rm kind >/dev/null && log "removed docker network kind"
    fi
    if [[ -f "${HOST_SYSCTL_FILE}" ]]; then
      while IFS='=' read -r key value; do
        [[ -n "${key}" ]] || continue
        if [[ "$(sysctl -n "${key}" 2>/dev/null)" != "${value}" ]]; then
          if sysctl -q -w "${key}=${value}" >/dev/null 2>&1; then
            log "restored ${key}=${value}"
          else
            log "WARN: could not restore ${key}=${value}"
          fi
        fi
      done <"${HOST_SYSCTL_FILE}"
      rm -f "${HOST_SYSCTL_FILE}"
    fi
  fi
  rm -rf "$(state_dir)"
}

# cluster_load IMAGE...: `kind load docker-image` into every node. It runs
# `docker exec --privileged`, hence the wrapper on hosts that refuse it.
cluster_load() {
  local image node_image
  [[ $# -gt 0 ]] || die "usage: airgap load IMAGE [IMAGE...]"
  cluster_exists || die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"
  node_image="$("${DOCKER}" inspect -f '{{.Config.Image}}' "${KIND_CLUSTER}-control-plane")"
  use_docker_wrapper "${node_image}"
  for image in "$@"; do
    image_exists "${image}" || die "no local image ${image} (docker build it first)"
    "${KIND}" load docker-image "${image}" --name "${KIND_CLUSTER}"
  done
}
