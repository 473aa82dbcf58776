# shellcheck shell=bash
# The air-gapped kind node image, built the way kind's own node-image build
# (pkg/build/nodeimage) does it, without pulling anything:
#   1. a base image from the Debian minbase + Debian packages + kind's
#      images/base/files taken from the kind Go module in the module cache;
#   2. in a container of that base: kubeadm/kubelet/kubectl into /usr/bin,
#      the CNI plugins into /opt/cni/bin, /kind/version, kind's default
#      storage and CNI manifests, and every image the cluster needs imported
#      into containerd's k8s.io namespace, pinned;
#   3. docker commit with kind's entrypoint.

# The image tags in versions.env must be the ones this kubeadm asks for (it
# works offline when given the version); a mismatch after a version bump
# would only show up as an ImagePullBackOff in the cluster.
node_check_kubeadm_images() {
  local wanted preload image
  wanted="$("$(k8s_bin_dir)/kubeadm" config images list \
    --kubernetes-version "${KUBERNETES_VERSION}" --image-repository "${IMAGE_REPO}")"
  preload="$(node_preload_images)"
  for image in ${wanted}; do
    grep -qx "${image}" <<<"${preload}" ||
      die "kubeadm ${KUBERNETES_VERSION} wants ${image}, which versions.env does not build (update ETCD_IMAGE_TAG, COREDNS_VERSION or PAUSE_VERSION)"
  done
}

# --- 1. base image --------------------------------------------------------------
kind_base_build() (
  if image_exists "${KIND_BASE_IMAGE}"; then
    log "${KIND_BASE_IMAGE}: present"
    return 0
  fi
  log "${KIND_BASE_IMAGE}: building"
  local kind_dir ctx
  go_env
  kind_dir="$(go_mod_dir "sigs.k8s.io/kind@${KIND_VERSION}")"
  [[ -d "${kind_dir}/images/base/files" ]] || die "no images/base/files in ${kind_dir}"
  ctx="$(mktemp -d "${AIRGAP_CACHE}/tmp/kind-base.XXXXXX")"
  # A subshell function: the trap removes the context when it returns.
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
  install -m 0755 "$(component_binary crictl)" "${ctx}/crictl"
  docker_build "${KIND_BASE_IMAGE}" "${ctx}" || die "docker build of ${KIND_BASE_IMAGE} failed"
)

# --- 2+3. node image ---------------------------------------------------------------
# A subshell function, so that its EXIT trap removes the build container.
node_assemble() (
  local container="kind-airgap-build-$$" k8s_bin b i
  k8s_bin="$(k8s_bin_dir)"
  trap '"${DOCKER}" rm -f -v "${container}" >/dev/null 2>&1 || true' EXIT
  in_node() { "${DOCKER}" exec -i "${container}" "$@"; }
  # put_file SRC DEST MODE: copy a file into the build container, root-owned.
  put_file() {
    "${DOCKER}" cp "$1" "${container}:$2"
    in_node chown root:root "$2"
    in_node chmod "$3" "$2"
  }

  log "${AIRGAP_NODE_IMAGE}: assembling"
  # As kind's build container: sleep forever, no seccomp filter (containerd
  # runs inside it for the image import).
  "${DOCKER}" run -d --name "${container}" --entrypoint=sleep \
    --security-opt seccomp=unconfined "${KIND_BASE_IMAGE}" infinity >/dev/null

  for b in kubeadm kubelet kubectl; do put_file "${k8s_bin}/${b}" "/usr/bin/${b}" 0755; done
  printf '%s' "${KUBERNETES_VERSION}" | in_node sh -c 'cat >/kind/version'

  # The CNI plugins built from containernetworking/plugins replace the
  # Debian ones the base image links into /opt/cni/bin.
  for b in "${CNI_PLUGINS[@]}"; do
    in_node rm -f "/opt/cni/bin/${b}"
    put_file "$(component_binary cni-plugins)/${b}" "/opt/cni/bin/${b}" 0755
  done

  # kind applies these at create time: the default StorageClass, and (unless
  # the config disables the default CNI) the pod network, rendered by kind
  # with the cluster's pod subnet.
  in_node mkdir -p /kind/manifests
  sed -e "s|@LOCAL_PATH_IMAGE@|${LOCAL_PATH_IMAGE}|g" \
    -e "s|@LOCAL_PATH_HELPER_IMAGE@|${LOCAL_PATH_HELPER_IMAGE}|g" \
    "${AIRGAP_DIR}/manifests/local-path-storage.yaml" |
    in_node sh -c 'cat >/kind/manifests/default-storage.yaml'
  sed -e "s|@FLANNEL_IMAGE@|${FLANNEL_IMAGE}|g" -e "s|@NETPOL_IMAGE@|${NETPOL_IMAGE}|g" \
    "${AIRGAP_DIR}/manifests/cni.yaml" |
    in_node sh -c 'cat >/kind/manifests/default-cni.yaml'

  # Keep connections to Service IPs from leaving the machine before
  # kube-proxy is ready (see the script for the incident).
  put_file "${AIRGAP_DIR}/images/kind-node/airgap-contain-services" /usr/local/bin/airgap-contain-services 0755
  put_file "${AIRGAP_DIR}/images/kind-node/20-airgap.conf" /etc/systemd/system/kubelet.service.d/20-airgap.conf 0644

  # Pin every image in containerd like kind does, so kubelet's image GC
  # never removes them. Imported without unpacking, as kind does: the
  # snapshots are made at first use inside the running node.
  in_node sh -c 'containerd >/var/log/containerd-build.log 2>&1 & echo $! >/run/containerd-build.pid'
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if in_node ctr version >/dev/null 2>&1; then break; fi
    sleep "${i}"
  done
  in_node ctr version >/dev/null || die "containerd did not start in the build container"
  local images=() listed
  mapfile -t images < <(node_preload_images)
  log "importing ${#images[@]} images into the node's containerd"
  "${DOCKER}" save "${images[@]}" |
    in_node ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - >/dev/null
  listed="$(in_node ctr --namespace=k8s.io images list -q)"
  for i in "${images[@]}"; do
    # containerd stores docker-style short names in their normalised form.
    grep -q "/${i}\$" <<<"${listed}" || die "image ${i} missing in the node after import"
  done
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
    "${container}" "${AIRGAP_NODE_IMAGE}" >/dev/null
  log "${AIRGAP_NODE_IMAGE}: built"
)

# node_image_build: everything the node image needs, then the image itself.
node_image_build() {
  if image_exists "${AIRGAP_NODE_IMAGE}"; then
    log "${AIRGAP_NODE_IMAGE}: present"
    return 0
  fi
  k8s_build kubeadm kubelet kubectl
  node_check_kubeadm_images
  cluster_images_build
  components_build crictl
  build_component cni-plugins
  kind_base_build
  node_assemble
}
