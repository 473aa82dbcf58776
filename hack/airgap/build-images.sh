#!/usr/bin/env bash
# Build the container images the cluster runs, from the binaries cached by
# build-k8s.sh / build-components.sh and the Debian minbase image:
#   airgap/pause, airgap/etcd, airgap/coredns, airgap/kube-apiserver,
#   airgap/kube-controller-manager, airgap/kube-scheduler, airgap/kube-proxy,
#   airgap/metrics-server, airgap/local-path-provisioner, airgap/local-path-helper
# Tags are exactly what kubeadm asks for with imageRepository "airgap"; an
# image already in the daemon under its tag is not rebuilt.
#
# Usage: build-images.sh [pause|kube-apiserver|...|local-path-helper ...]
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

K8S_BIN="$(cache_dir kubernetes "${KUBERNETES_VERSION}")/bin"

# build_image IMAGE DOCKERFILE_DIR BINARY...: docker build with a context of
# the Dockerfile directory's files plus bin/<each binary>.
build_image() {
  local image=$1 dfdir=$2 ctx b
  shift 2
  if image_exists "${image}"; then
    log "${image}: present"
    return 0
  fi
  log "${image}: building"
  ctx="$(mktemp -d "${AIRGAP_CACHE}/tmp/ctx.XXXXXX")"
  cp -a "${AIRGAP_DIR}/images/${dfdir}/." "${ctx}/"
  mkdir -p "${ctx}/bin"
  for b in "$@"; do
    # Hard links would be cheaper but the cache may sit on another device.
    cp "${b}" "${ctx}/bin/"
  done
  if ! docker_build "${image}" "${ctx}"; then
    rm -rf "${ctx}"
    die "docker build of ${image} failed"
  fi
  rm -rf "${ctx}"
}

build_pause() {
  # pause needs nothing but its static binary: an image of one file,
  # imported directly (the upstream image is FROM scratch too), running as
  # 65535 like upstream's.
  if image_exists "${PAUSE_IMAGE}"; then
    log "${PAUSE_IMAGE}: present"
    return 0
  fi
  "${AIRGAP_DIR}/build-k8s.sh" pause
  log "${PAUSE_IMAGE}: building"
  tar --owner=0 --group=0 -C "${K8S_BIN}" -c pause |
    "${DOCKER}" import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' - "${PAUSE_IMAGE}" >/dev/null
}

build_named() {
  local name=$1
  case "${name}" in
    pause) build_pause ;;
    kube-apiserver | kube-controller-manager | kube-scheduler)
      "${AIRGAP_DIR}/build-k8s.sh" "${name}"
      build_image "${IMAGE_REPO}/${name}:${KUBERNETES_VERSION}" kube-component "${K8S_BIN}/${name}"
      ;;
    kube-proxy)
      "${AIRGAP_DIR}/build-k8s.sh" kube-proxy
      build_image "${IMAGE_REPO}/kube-proxy:${KUBERNETES_VERSION}" kube-proxy "${K8S_BIN}/kube-proxy"
      ;;
    etcd)
      "${AIRGAP_DIR}/build-components.sh" etcd
      build_image "${ETCD_IMAGE}" kube-component "$(cache_dir etcd "${ETCD_VERSION}")/etcd"
      ;;
    coredns)
      "${AIRGAP_DIR}/build-components.sh" coredns
      build_image "${COREDNS_IMAGE}" coredns "$(cache_dir coredns "${COREDNS_VERSION}")/coredns"
      ;;
    metrics-server)
      "${AIRGAP_DIR}/build-components.sh" metrics-server
      build_image "${METRICS_SERVER_IMAGE}" metrics-server \
        "$(cache_dir metrics-server "${METRICS_SERVER_VERSION}")/metrics-server"
      ;;
    local-path-provisioner)
      "${AIRGAP_DIR}/build-components.sh" local-path-provisioner
      build_image "${LOCAL_PATH_IMAGE}" local-path-provisioner \
        "$(cache_dir local-path-provisioner "${LOCAL_PATH_PROVISIONER_VERSION}")/local-path-provisioner"
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

ALL=(pause kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns
  metrics-server local-path-provisioner local-path-helper)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${ALL[@]}")
mkdir -p "${AIRGAP_CACHE}/tmp"
"${AIRGAP_DIR}/build-minbase.sh"
for n in "${names[@]}"; do
  build_named "${n}"
done
