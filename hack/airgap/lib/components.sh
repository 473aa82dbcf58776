# shellcheck shell=bash
# The non-Kubernetes binaries of the cluster, from their Go modules:
#   components: etcd, CoreDNS, crictl, metrics-server, local-path-provisioner
#   cni:        flanneld, the CNI plugins bridge/host-local/portmap/loopback,
#               kube-network-policies
# Output: $AIRGAP_CACHE/<component>/<version>/<binary>, skipped when present.

COMPONENTS=(etcd coredns crictl metrics-server local-path-provisioner)
# shellcheck disable=SC2034 # used by the build and status commands
CNI_COMPONENTS=(flannel cni-plugins kube-network-policies)
# The plugins a node needs: containerd sets up each pod's loopback, our CNI
# config chains bridge (+ host-local addresses) and portmap (hostPort).
CNI_PLUGINS=(bridge host-local portmap loopback)

component_version() {
  case "$1" in
    etcd) echo "${ETCD_VERSION}" ;;
    coredns) echo "${COREDNS_VERSION}" ;;
    crictl) echo "${CRICTL_VERSION}" ;;
    metrics-server) echo "${METRICS_SERVER_VERSION}" ;;
    local-path-provisioner) echo "${LOCAL_PATH_PROVISIONER_VERSION}" ;;
    flannel) echo "${FLANNEL_VERSION}" ;;
    cni-plugins) echo "${CNI_PLUGINS_VERSION}" ;;
    kube-network-policies) echo "${KUBE_NETWORK_POLICIES_VERSION}" ;;
    *) die "unknown component $1" ;;
  esac
}

# component_binary NAME: where the cached binary of NAME lives (for
# cni-plugins: the directory of the plugins).
component_binary() {
  local name=$1 dir
  dir="$(cache_dir "${name}" "$(component_version "${name}")")"
  case "${name}" in
    flannel) printf '%s/flanneld' "${dir}" ;;
    cni-plugins) printf '%s/bin' "${dir}" ;;
    *) printf '%s/%s' "${dir}" "${name}" ;;
  esac
}

# A wrapper module whose only requirement is MODULE@VERSION: for modules
# whose go.mod replaces siblings with ../ paths outside their zip (etcd).
wrapper_module() {
  local dir=$1 module=$2 version=$3
  cache_ok "${dir}" && return 0
  rm -rf "${dir}"
  mkdir -p "${dir}"
  printf 'module storefront-airgap/wrapper\n\ngo 1.24\n\nrequire %s %s\n' "${module}" "${version}" >"${dir}/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "${module}" >"${dir}/tools.go"
  (cd "${dir}" && go mod tidy)
  cache_mark "${dir}"
}

build_component_binary() {
  local name=$1 version=$2 out=$3 dir p
  case "${name}" in
    etcd)
      # Debian's etcd (3.4) lacks the /livez and /readyz endpoints kubeadm
      # 1.34 probes; the server module replaces its siblings with ../ paths.
      dir="$(cache_dir etcd "${version}")/src"
      wrapper_module "${dir}" go.etcd.io/etcd/server/v3 "${version}"
      go_build_at "${dir}" "${out}" go.etcd.io/etcd/server/v3 -ldflags="-s -w"
      ;;
    coredns)
      dir="$(go_mod_dir "github.com/coredns/coredns@${version}")"
      go_build_at "${dir}" "${out}" . \
        -ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=${version}"
      ;;
    crictl)
      dir="$(go_mod_dir "sigs.k8s.io/cri-tools@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/crictl \
        -ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${version}"
      ;;
    metrics-server)
      dir="$(go_mod_dir "sigs.k8s.io/metrics-server@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/metrics-server \
        -ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=${version}"
      ;;
    local-path-provisioner)
      # Its zip carries only part of its vendor/ tree, so build in module
      # mode (the default -mod=readonly against its own go.sum).
      dir="$(go_mod_dir "github.com/rancher/local-path-provisioner@${version}")"
      go_build_at "${dir}" "${out}" . -mod=readonly \
        -ldflags="-s -w -X main.VERSION=${version}"
      ;;
    flannel)
      # On amd64 its UDP backend is C (cgo), as in its Makefile: linked
      # statically, so the binary runs in any image (Go's own resolver and
      # user lookup: glibc's would need its shared libraries at run time).
      dir="$(go_mod_dir "github.com/flannel-io/flannel@${version}")"
      CGO_ENABLED=1 go_build_at "${dir}" "${out}" . -tags "netgo osusergo" \
        -ldflags="-s -w -X github.com/flannel-io/flannel/pkg/version.Version=${version} -extldflags -static"
      ;;
    cni-plugins)
      dir="$(go_mod_dir "github.com/containernetworking/plugins@${version}")"
      rm -rf "${out}.tmp"
      for p in "${CNI_PLUGINS[@]}"; do
        go_build_at "${dir}" "${out}.tmp/${p}" "$(cd "${dir}" && echo ./plugins/*/"${p}")" \
          -ldflags="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${version}"
      done
      rm -rf "${out}"
      mv "${out}.tmp" "${out}"
      ;;
    kube-network-policies)
      netpol_build "${version}" "${out}"
      ;;
  esac
}

# netpol_build VERSION OUT: kube-network-policies, adapted to kernels
# without nft_queue. It hands packets to its userspace policy engine with
# nftables' native `queue` expression, which needs CONFIG_NFT_QUEUE; our
# hosts' kernel lacks it (`nft add rule ... queue num 100` fails with "No
# such file or directory") but has the xtables NFQUEUE target, which
# nftables reaches through nft_compat. So the module is copied into the
# build cache (go build -overlay may not touch the module cache), each use
# of the queue expression in its controller is swapped for that target, and
# hack/airgap/overlays/kube-network-policies/nfqueue_compat.go is added.
netpol_build() {
  local version=$1 out=$2 dir src
  dir="$(go_mod_dir "sigs.k8s.io/kube-network-policies@${version}")"
  src="$(cache_dir kube-network-policies "${version}")/src"
  rm -rf "${src}"
  mkdir -p "$(dirname "${src}")"
  cp -r "${dir}" "${src}"
  chmod -R u+w "${src}"
  # Every queue verdict sits alone on a line as `queue,` in an Exprs list.
  sed -i 's/^\([[:space:]]*\)queue,$/\1nfqueueTarget(queue),/' "${src}/pkg/networkpolicy/controller.go"
  [[ "$(grep -c 'nfqueueTarget(queue),' "${src}/pkg/networkpolicy/controller.go")" -ge 2 ]] ||
    die "kube-network-policies ${version}: the queue rules moved; review hack/airgap/overlays"
  cp "${AIRGAP_DIR}/overlays/kube-network-policies/nfqueue_compat.go" "${src}/pkg/networkpolicy/"
  go_build_at "${src}" "${out}" ./cmd -ldflags="-s -w"
}

build_component() {
  local name=$1 version out
  version="$(component_version "${name}")"
  out="$(component_binary "${name}")"
  if [[ -e "${out}" ]]; then
    log "${name} ${version}: cached"
    return 0
  fi
  log "${name} ${version}: building"
  go_env
  build_component_binary "${name}" "${version}" "${out}"
}

# components_build [NAME...]: the `components` step by default.
components_build() {
  local names=("$@") n
  [[ ${#names[@]} -gt 0 ]] || names=("${COMPONENTS[@]}")
  for n in "${names[@]}"; do build_component "${n}"; done
}
