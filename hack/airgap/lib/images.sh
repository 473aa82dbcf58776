# shellcheck shell=bash
# Container images, from the cached binaries and Debian minbase images:
#   the `images` step: airgap/pause, etcd, coredns, kube-apiserver,
#     kube-controller-manager, kube-scheduler, kube-proxy, metrics-server,
#     local-path-provisioner, local-path-helper, flannel,
#     kube-network-policies (tags exactly what kubeadm and our manifests
#     ask for with the "airgap" repository);
#   minbase_build SUITE: storefront-airgap/debian:<suite>-minbase.
# An image already in the daemon under its tag is not rebuilt.

CLUSTER_IMAGES=(pause kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns
  metrics-server local-path-provisioner local-path-helper flannel kube-network-policies)

# minbase_build SUITE: a debootstrap minbase of SUITE, imported with `docker
# import` (no image can be pulled here); see hack/lib/debian.sh.
minbase_build() (
  local suite=$1 image rootfs
  image="$(minbase_image "${suite}")"
  if image_exists "${image}"; then
    log "${image}: present"
    return 0
  fi
  # shellcheck source=hack/lib/debian.sh
  . "${AIRGAP_DIR}/../lib/debian.sh"
  rootfs="$(mktemp -d "${AIRGAP_CACHE}/tmp/minbase.XXXXXX")"
  # A subshell function: the trap cleans up when it returns.
  trap 'debian_rootfs_cleanup "${rootfs}"' EXIT
  log "debootstrap --variant=minbase ${suite}, with the host's updates and security fixes"
  debian_rootfs "${rootfs}" "${suite}" || die "building the ${suite} root filesystem failed"
  log "importing ${image}"
  debian_import "${rootfs}" "${image}" --change 'CMD ["bash"]'
  log "${image}: built"
)

# build_image IMAGE DOCKERFILE_DIR FILE...: docker build with a context of
# images/DOCKERFILE_DIR plus bin/<each FILE>.
build_image() {
  local image=$1 dfdir=$2 ctx f status=0
  shift 2
  if image_exists "${image}"; then
    log "${image}: present"
    return 0
  fi
  log "${image}: building"
  ctx="$(mktemp -d "${AIRGAP_CACHE}/tmp/ctx.XXXXXX")"
  cp -a "${AIRGAP_DIR}/images/${dfdir}/." "${ctx}/"
  mkdir -p "${ctx}/bin"
  for f in "$@"; do
    # Hard links would be cheaper but the cache may sit on another device.
    cp "${f}" "${ctx}/bin/"
  done
  docker_build "${image}" "${ctx}" || status=$?
  rm -rf "${ctx}"
  [[ "${status}" == 0 ]] || die "docker build of ${image} failed"
}

build_pause_image() {
  # pause needs nothing but its static binary: an image of one file,
  # imported directly (the upstream image is FROM scratch too), running as
  # 65535 like upstream's.
  if image_exists "${PAUSE_IMAGE}"; then
    log "${PAUSE_IMAGE}: present"
    return 0
  fi
  k8s_build pause
  log "${PAUSE_IMAGE}: building"
  tar --owner=0 --group=0 -C "$(k8s_bin_dir)" -c pause |
    "${DOCKER}" import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' - "${PAUSE_IMAGE}" >/dev/null
}

build_cluster_image() {
  local name=$1
  case "${name}" in
    pause) build_pause_image ;;
    kube-apiserver | kube-controller-manager | kube-scheduler)
      image_exists "${IMAGE_REPO}/${name}:${KUBERNETES_VERSION}" || k8s_build "${name}"
      build_image "${IMAGE_REPO}/${name}:${KUBERNETES_VERSION}" kube-component "$(k8s_bin_dir)/${name}"
      ;;
    kube-proxy)
      image_exists "${IMAGE_REPO}/kube-proxy:${KUBERNETES_VERSION}" || k8s_build kube-proxy
      build_image "${IMAGE_REPO}/kube-proxy:${KUBERNETES_VERSION}" kube-proxy "$(k8s_bin_dir)/kube-proxy"
      ;;
    etcd | coredns | metrics-server | local-path-provisioner | kube-network-policies)
      local image dfdir
      case "${name}" in
        etcd) image="${ETCD_IMAGE}" dfdir=kube-component ;;
        coredns) image="${COREDNS_IMAGE}" dfdir=coredns ;;
        metrics-server) image="${METRICS_SERVER_IMAGE}" dfdir=metrics-server ;;
        local-path-provisioner) image="${LOCAL_PATH_IMAGE}" dfdir=local-path-provisioner ;;
        kube-network-policies) image="${NETPOL_IMAGE}" dfdir=kube-component ;;
      esac
      image_exists "${image}" || build_component "${name}"
      build_image "${image}" "${dfdir}" "$(component_binary "${name}")"
      ;;
    flannel)
      image_exists "${FLANNEL_IMAGE}" || build_component flannel
      build_image "${FLANNEL_IMAGE}" flannel "$(component_binary flannel)" \
        "${AIRGAP_DIR}/images/kube-proxy/iptables-wrapper"
      ;;
    local-path-helper)
      # The helper pod only runs `sh -c 'mkdir -m 0777 -p DIR'` or
      # `rm -rf DIR`: the Debian minbase has both, so it is another tag.
      image_exists "${LOCAL_PATH_HELPER_IMAGE}" || "${DOCKER}" tag "${MINBASE_IMAGE}" "${LOCAL_PATH_HELPER_IMAGE}"
      log "${LOCAL_PATH_HELPER_IMAGE}: present"
      ;;
    *) die "unknown image ${name}" ;;
  esac
}

# cluster_images_build [NAME...]: the `images` step by default.
cluster_images_build() {
  local names=("$@") n
  [[ ${#names[@]} -gt 0 ]] || names=("${CLUSTER_IMAGES[@]}")
  minbase_build "${DEBIAN_SUITE}"
  for n in "${names[@]}"; do build_cluster_image "${n}"; done
}
