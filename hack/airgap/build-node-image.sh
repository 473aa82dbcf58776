#!/usr/bin/env bash
# Build the air-gapped kind node image the way kind's own node-image build
# (pkg/build/nodeimage) does, without pulling anything:
#   1. a base image from the Debian minbase + Debian packages + kind's
#      images/base/files taken from the kind Go module in the module cache;
#   2. in a container of that base: kubeadm/kubelet/kubectl into /usr/bin,
#      /kind/version, /kind/manifests/default-storage.yaml, and every image
#      the cluster needs imported into containerd's k8s.io namespace, pinned;
#   3. docker commit with kind's entrypoint.
# The result is $AIRGAP_NODE_IMAGE; nothing is rebuilt if it already exists.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

if image_exists "${AIRGAP_NODE_IMAGE}"; then
  log "${AIRGAP_NODE_IMAGE}: present"
  exit 0
fi

go_env
mkdir -p "${AIRGAP_CACHE}/tmp"
"${AIRGAP_DIR}/build-k8s.sh" kubeadm kubelet kubectl
K8S_BIN="$(cache_dir kubernetes "${KUBERNETES_VERSION}")/bin"

# The image tags in versions.env must be the ones this kubeadm asks for
# (it works offline when given the version); a mismatch after a version
# bump would only show up as an ImagePullBackOff in the cluster.
mapfile -t wanted < <("${K8S_BIN}/kubeadm" config images list \
  --kubernetes-version "${KUBERNETES_VERSION}" --image-repository "${IMAGE_REPO}")
preload="$(node_preload_images)"
for image in "${wanted[@]}"; do
  grep -qx "${image}" <<<"${preload}" ||
    die "kubeadm ${KUBERNETES_VERSION} wants ${image}, which versions.env does not build (update ETCD_IMAGE_TAG, COREDNS_VERSION or PAUSE_VERSION)"
done

"${AIRGAP_DIR}/build-images.sh"
"${AIRGAP_DIR}/build-components.sh" crictl

# --- 1. base image -------------------------------------------------------------
# Runs in a subshell so that its EXIT trap removes the temporary context.
build_base() (
  if image_exists "${KIND_BASE_IMAGE}"; then
    log "${KIND_BASE_IMAGE}: present"
    return 0
  fi
  log "${KIND_BASE_IMAGE}: building"
  local kind_dir ctx
  kind_dir="$(go_mod_dir "sigs.k8s.io/kind@${KIND_VERSION}")"
  [[ -d "${kind_dir}/images/base/files" ]] || die "no images/base/files in ${kind_dir}"
  ctx="$(mktemp -d "${AIRGAP_CACHE}/tmp/kind-base.XXXXXX")"
  trap 'rm -rf "${ctx}"' EXIT
  cp "${AIRGAP_DIR}/images/kind-base/Dockerfile" "${ctx}/"
  # Copied from the module cache at build time, never committed. The module
  # cache is read-only, so fix modes the way kind's Dockerfile does
  # (scripts 0755, everything else 0644).
  cp -r "${kind_dir}/images/base/files" "${ctx}/files"
  chmod -R u+w "${ctx}/files"
  find "${ctx}/files" -type d -exec chmod 0755 {} +
  find "${ctx}/files" -type f -exec chmod 0644 {} +
  chmod 0755 "${ctx}/files/usr/local/bin/"* "${ctx}/files/kind/bin/"*
  # containerd's sandbox (pause) image: replace the whole line so that the
  # upstream registry host never appears in anything we write, and point it
  # at our pause image.
  sed -i "s|^\([[:space:]]*\)sandbox_image = .*\$|\1sandbox_image = \"${PAUSE_IMAGE}\"|" \
    "${ctx}/files/etc/containerd/config.toml"
  grep -q "sandbox_image = \"${PAUSE_IMAGE}\"" "${ctx}/files/etc/containerd/config.toml" ||
    die "could not set sandbox_image in kind's containerd config"
  install -m 0755 "$(cache_dir crictl "${CRICTL_VERSION}")/crictl" "${ctx}/crictl"
  docker_build "${KIND_BASE_IMAGE}" "${ctx}" || die "docker build of ${KIND_BASE_IMAGE} failed"
)

# --- 2+3. node image ---------------------------------------------------------------
BUILD_CONTAINER=""
cleanup() {
  if [[ -n "${BUILD_CONTAINER}" ]]; then
    "${DOCKER}" rm -f -v "${BUILD_CONTAINER}" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# in_node CMD...: run a command in the build container.
in_node() { "${DOCKER}" exec -i "${BUILD_CONTAINER}" "$@"; }

build_node() {
  log "${AIRGAP_NODE_IMAGE}: assembling"
  BUILD_CONTAINER="kind-airgap-build-$$"
  # As kind's build container: sleep forever, no seccomp filter (containerd
  # runs inside it for the image import).
  "${DOCKER}" run -d --name "${BUILD_CONTAINER}" --entrypoint=sleep \
    --security-opt seccomp=unconfined "${KIND_BASE_IMAGE}" infinity >/dev/null

  local b
  for b in kubeadm kubelet kubectl; do
    "${DOCKER}" cp "${K8S_BIN}/${b}" "${BUILD_CONTAINER}:/usr/bin/${b}"
    in_node chown root:root "/usr/bin/${b}"
    in_node chmod 0755 "/usr/bin/${b}"
  done
  printf '%s' "${KUBERNETES_VERSION}" | in_node sh -c 'cat >/kind/version'

  # kind applies /kind/manifests/default-storage.yaml at create time.
  in_node mkdir -p /kind/manifests
  sed -e "s|@LOCAL_PATH_IMAGE@|${LOCAL_PATH_IMAGE}|g" \
    -e "s|@LOCAL_PATH_HELPER_IMAGE@|${LOCAL_PATH_HELPER_IMAGE}|g" \
    "${AIRGAP_DIR}/manifests/local-path-storage.yaml" |
    in_node sh -c 'cat >/kind/manifests/default-storage.yaml'

  # Keep connections to Service IPs from leaving the machine before
  # kube-proxy is ready (see the script for the incident).
  "${DOCKER}" cp "${AIRGAP_DIR}/images/kind-node/airgap-contain-services" \
    "${BUILD_CONTAINER}:/usr/local/bin/airgap-contain-services"
  "${DOCKER}" cp "${AIRGAP_DIR}/images/kind-node/20-airgap.conf" \
    "${BUILD_CONTAINER}:/etc/systemd/system/kubelet.service.d/20-airgap.conf"
  in_node chown root:root /usr/local/bin/airgap-contain-services /etc/systemd/system/kubelet.service.d/20-airgap.conf
  in_node chmod 0755 /usr/local/bin/airgap-contain-services
  in_node chmod 0644 /etc/systemd/system/kubelet.service.d/20-airgap.conf

  # No kindnetd image can be pulled (it is not a tagged module either), so
  # the node gets a static bridge CNI config from Debian's CNI plugins and
  # the cluster config sets disableDefaultCNI. One node only: the range is
  # that node's podCIDR (first /24 of the pod subnet).
  in_node mkdir -p /etc/cni/net.d
  in_node sh -c 'cat >/etc/cni/net.d/10-airgap-bridge.conflist' <"${AIRGAP_DIR}/manifests/cni-bridge.conflist"

  # Pin every image in containerd like kind does, so kubelet's image GC
  # never removes them. Imported without unpacking, as kind does: the
  # snapshots are made at first use inside the running node.
  in_node sh -c 'containerd >/var/log/containerd-build.log 2>&1 & echo $! >/run/containerd-build.pid'
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if in_node ctr version >/dev/null 2>&1; then break; fi
    sleep "${i}"
  done
  in_node ctr version >/dev/null || die "containerd did not start in the build container"
  local images=()
  mapfile -t images < <(node_preload_images)
  log "importing ${#images[@]} images into the node's containerd"
  "${DOCKER}" save "${images[@]}" |
    in_node ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - >/dev/null
  in_node ctr --namespace=k8s.io images list -q >"${AIRGAP_CACHE}/tmp/node-images.$$"
  for i in "${images[@]}"; do
    # containerd stores docker-style short names in their normalised form.
    grep -q "/${i}\$" "${AIRGAP_CACHE}/tmp/node-images.$$" ||
      { rm -f "${AIRGAP_CACHE}/tmp/node-images.$$"; die "image ${i} missing in the node after import"; }
  done
  rm -f "${AIRGAP_CACHE}/tmp/node-images.$$"
  # Stop containerd cleanly so its metadata is flushed before the commit.
  # PID 1 of the build container (sleep) reaps nobody, so the stopped
  # containerd lingers as a zombie: wait for state Z or for it to vanish.
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  in_node sh -c 'pid=$(cat /run/containerd-build.pid); kill "$pid"
    while [ -e "/proc/$pid" ] && [ "$(cut -d" " -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 1; done
    rm -f /run/containerd-build.pid /var/log/containerd-build.log'

  "${DOCKER}" commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL io.storefront.airgap.kind-version=${KIND_VERSION} io.storefront.airgap.kubernetes-version=${KUBERNETES_VERSION}" \
    "${BUILD_CONTAINER}" "${AIRGAP_NODE_IMAGE}" >/dev/null
  log "${AIRGAP_NODE_IMAGE}: built"
}

build_base
build_node
