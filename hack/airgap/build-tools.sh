#!/usr/bin/env bash
# Build the developer tools (helm, skaffold, kubeconform, kind, kubectl) from
# their Go modules at the versions pinned in versions.env and install them
# into $REPO_ROOT/bin. Nothing comes from release pages: only the Go module
# proxy is reachable. Each binary is cached per version under
# $AIRGAP_CACHE/tools/<name>/<version>/ and is not rebuilt when present.
#
# Usage: build-tools.sh [helm|skaffold|kubeconform|kind|kubectl ...]
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock
go_env

ALL_TOOLS=(kind kubectl helm kubeconform skaffold)

tool_version() {
  case "$1" in
    kind) echo "${KIND_VERSION}" ;;
    kubectl) echo "${KUBERNETES_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
    kubeconform) echo "${KUBECONFORM_VERSION}" ;;
    skaffold) echo "${SKAFFOLD_VERSION}" ;;
    *) die "unknown tool $1" ;;
  esac
}

build_tool() {
  local name=$1 version out dir
  version="$(tool_version "${name}")"
  out="$(cache_dir tools "${name}/${version}")/${name}"
  if [[ -x "${out}" ]]; then
    log "${name} ${version}: cached"
    return 0
  fi
  log "${name} ${version}: building"
  case "${name}" in
    kind)
      dir="$(go_mod_dir "sigs.k8s.io/kind@${version}")"
      go_build_at "${dir}" "${out}" . -ldflags="-s -w"
      ;;
    kubectl)
      # kubectl's main package lives in k8s.io/kubernetes, whose go.mod
      # replaces its staging modules with paths outside the module zip, so
      # it is built by the Kubernetes wrapper module (shared cache).
      "${AIRGAP_DIR}/build-k8s.sh" kubectl
      install -D -m 0755 "$(cache_dir kubernetes "${KUBERNETES_VERSION}")/bin/kubectl" "${out}"
      ;;
    helm)
      dir="$(go_mod_dir "helm.sh/helm/v3@${version}")"
      # Helm embeds the Kubernetes minor it was built against (its Makefile
      # derives it from client-go); without it `helm template` assumes 1.20.
      local kv major minor
      kv="$(cd "${dir}" && go list -m -f '{{.Version}}' k8s.io/client-go)"
      kv="${kv#v}"
      major=$(( ${kv%%.*} + 1 ))
      minor="$(cut -d. -f2 <<<"${kv}")"
      go_build_at "${dir}" "${out}" ./cmd/helm -ldflags="-s -w \
        -X helm.sh/helm/v3/internal/version.version=${version} \
        -X helm.sh/helm/v3/internal/version.metadata= \
        -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${major} \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor} \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${major} \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
      ;;
    kubeconform)
      dir="$(go_mod_dir "github.com/yannh/kubeconform@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/kubeconform -ldflags="-s -w -X main.version=${version}"
      ;;
    skaffold)
      # skaffold's go.mod has replace directives, so `go install MOD@VER`
      # refuses it; building inside its module directory applies them.
      # Tags as its Makefile uses for static linux release builds.
      dir="$(go_mod_dir "github.com/GoogleContainerTools/skaffold/v2@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/skaffold \
        -tags "timetzdata osusergo netgo release" \
        -ldflags="-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=${version}"
      ;;
  esac
}

install_tool() {
  local name=$1 src
  src="$(cache_dir tools "${name}/$(tool_version "${name}")")/${name}"
  mkdir -p "${BIN_DIR}"
  if ! cmp -s "${src}" "${BIN_DIR}/${name}"; then
    install -m 0755 "${src}" "${BIN_DIR}/${name}"
    log "${name}: installed into ${BIN_DIR}"
  fi
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
for t in "${tools[@]}"; do
  build_tool "${t}"
  install_tool "${t}"
done
