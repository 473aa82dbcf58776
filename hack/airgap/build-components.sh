#!/usr/bin/env bash
# Build the non-Kubernetes binaries the cluster needs from their Go modules:
# etcd, CoreDNS, crictl, metrics-server and local-path-provisioner.
# Output: $AIRGAP_CACHE/<component>/<version>/<binary>, skipped when present.
#
# Usage: build-components.sh [etcd|coredns|crictl|metrics-server|local-path-provisioner ...]
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock
go_env

ALL=(etcd coredns crictl metrics-server local-path-provisioner)

component_version() {
  case "$1" in
    etcd) echo "${ETCD_VERSION}" ;;
    coredns) echo "${COREDNS_VERSION}" ;;
    crictl) echo "${CRICTL_VERSION}" ;;
    metrics-server) echo "${METRICS_SERVER_VERSION}" ;;
    local-path-provisioner) echo "${LOCAL_PATH_PROVISIONER_VERSION}" ;;
    *) die "unknown component $1" ;;
  esac
}

# component_binary NAME: where the cached binary of NAME lives.
component_binary() {
  printf '%s/%s' "$(cache_dir "$1" "$(component_version "$1")")" "$1"
}

build() {
  local name=$1 version out dir
  version="$(component_version "${name}")"
  out="$(component_binary "${name}")"
  if [[ -x "${out}" ]]; then
    log "${name} ${version}: cached"
    return 0
  fi
  log "${name} ${version}: building"
  case "${name}" in
    etcd)
      # Debian's etcd (3.4) lacks the /livez and /readyz endpoints kubeadm
      # 1.34 probes. The etcd server module replaces its sibling modules
      # with ../ paths outside its zip, so build it through a generated
      # wrapper module whose requirements resolve to the published siblings.
      dir="$(cache_dir etcd "${version}")/src"
      if ! cache_ok "${dir}"; then
        rm -rf "${dir}"
        mkdir -p "${dir}"
        printf 'module storefront-airgap/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
          "${version}" >"${dir}/go.mod"
        printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"${dir}/tools.go"
        (cd "${dir}" && go mod tidy)
        cache_mark "${dir}"
      fi
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
  esac
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${ALL[@]}")
for n in "${names[@]}"; do
  build "${n}"
done
