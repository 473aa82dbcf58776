# shellcheck shell=bash
# Developer and test tools built from their Go modules at the versions in
# versions.env and installed into $BIN_DIR (bin/ of the clone). Nothing comes
# from release pages: only the Go module proxy is reachable. Each tool is
# cached per version under $AIRGAP_CACHE/tools/<name>/<version>/<name>, so a
# fresh clone installs them in a fraction of a second.
#
# Commands: airgap tools [NAME...], airgap test-tools

ALL_TOOLS=(kind kubectl helm helm3 kubeconform skaffold promtool helm-docs
  toxiproxy-server toxiproxy-cli vegeta gateway-api-crds)
# What the Python test tiers start (`make test-tools`).
# shellcheck disable=SC2034 # used by the test-tools command
TEST_TOOLS=(toxiproxy-server toxiproxy-cli vegeta)

tool_version() {
  case "$1" in
    kind) echo "${KIND_VERSION}" ;;
    kubectl) echo "${KUBERNETES_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
    helm3) echo "${HELM3_VERSION}" ;;
    kubeconform) echo "${KUBECONFORM_VERSION}" ;;
    skaffold) echo "${SKAFFOLD_VERSION}" ;;
    promtool) echo "${PROMETHEUS_VERSION}" ;;
    helm-docs) echo "${HELM_DOCS_VERSION}" ;;
    toxiproxy-server | toxiproxy-cli) echo "${TOXIPROXY_VERSION}" ;;
    vegeta) echo "${VEGETA_VERSION}" ;;
    gateway-api-crds) echo "${GATEWAY_API_VERSION}" ;;
    *) die "unknown tool $1 (known: ${ALL_TOOLS[*]})" ;;
  esac
}

# tool_path NAME: the cached binary (or, for the CRDs, directory) of NAME.
tool_path() { printf '%s/%s' "$(cache_dir tools "$1/$(tool_version "$1")")" "$1"; }

# Helm v3 embeds the Kubernetes minor it was built against (its Makefile
# derives it from client-go); without it `helm template` assumes 1.20.
# Helm v4 reads it from its build information at run time.
helm3_k8s_ldflags() {
  local dir=$1 kv major minor
  kv="$(cd "${dir}" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  kv="${kv#v}"
  major=$((${kv%%.*} + 1))
  minor="$(cut -d. -f2 <<<"${kv}")"
  printf -- '-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=%s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=%s -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=%s -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=%s' \
    "${major}" "${minor}" "${major}" "${minor}"
}

# build_tool_binary NAME VERSION OUT: the recipe of each tool.
build_tool_binary() {
  local name=$1 version=$2 out=$3 dir
  case "${name}" in
    kind)
      dir="$(go_mod_dir "sigs.k8s.io/kind@${version}")"
      go_build_at "${dir}" "${out}" . -ldflags="-s -w"
      ;;
    kubectl)
      # kubectl's main package lives in k8s.io/kubernetes, whose go.mod
      # replaces its staging modules with paths outside the module zip, so
      # the Kubernetes wrapper module builds it (shared cache).
      k8s_build kubectl
      install -D -m 0755 "$(k8s_bin_dir)/kubectl" "${out}"
      ;;
    helm)
      dir="$(go_mod_dir "helm.sh/helm/v4@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/helm -ldflags="-s -w \
        -X helm.sh/helm/v4/internal/version.version=${version} \
        -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
      ;;
    helm3)
      dir="$(go_mod_dir "helm.sh/helm/v3@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/helm -ldflags="-s -w \
        -X helm.sh/helm/v3/internal/version.version=${version} \
        -X helm.sh/helm/v3/internal/version.gitTreeState=clean $(helm3_k8s_ldflags "${dir}")"
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
    promtool)
      # The module's tags are v0.3XX.Y for Prometheus 3.XX.Y (v0.316.0 is
      # 3.16.0). netgo as its release build (promtool embeds no web assets).
      dir="$(go_mod_dir "github.com/prometheus/prometheus@${version}")"
      local minor_patch=${version#v0.3}
      go_build_at "${dir}" "${out}" ./cmd/promtool -tags netgo \
        -ldflags="-s -w -X github.com/prometheus/common/version.Version=3.$((10#${minor_patch%%.*})).${minor_patch#*.}"
      ;;
    helm-docs)
      dir="$(go_mod_dir "github.com/norwoodj/helm-docs@${version}")"
      go_build_at "${dir}" "${out}" ./cmd/helm-docs -ldflags="-s -w -X main.version=${version#v}"
      ;;
    toxiproxy-server | toxiproxy-cli)
      dir="$(go_mod_dir "github.com/Shopify/toxiproxy/v2@${version}")"
      go_build_at "${dir}" "${out}" "./cmd/${name#toxiproxy-}" \
        -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${version#v}"
      ;;
    vegeta)
      dir="$(go_mod_dir "github.com/tsenart/vegeta/v12@${version}")"
      go_build_at "${dir}" "${out}" . -ldflags="-s -w -X main.Version=${version}"
      ;;
    gateway-api-crds)
      # YAML only: the standard channel's CRDs, copied out of the module zip.
      dir="$(go_mod_dir "sigs.k8s.io/gateway-api@${version}")"
      [[ -d "${dir}/config/crd/standard" ]] || die "no config/crd/standard in ${dir}"
      rm -rf "${out}" "${out}.tmp"
      mkdir -p "${out}.tmp"
      install -m 0644 "${dir}"/config/crd/standard/*.yaml "${out}.tmp/"
      mv "${out}.tmp" "${out}"
      ;;
  esac
}

build_tool() {
  local name=$1 version out
  version="$(tool_version "${name}")"
  out="$(tool_path "${name}")"
  if [[ -e "${out}" ]]; then
    log "${name} ${version}: cached"
    return 0
  fi
  log "${name} ${version}: building"
  go_env
  build_tool_binary "${name}" "${version}" "${out}"
}

# install_tool NAME: copy the cached tool into bin/ (the CRDs into
# bin/crds/gateway-api/) unless the copy there is already the same.
install_tool() {
  local name=$1 src
  src="$(tool_path "${name}")"
  mkdir -p "${BIN_DIR}"
  if [[ "${name}" == gateway-api-crds ]]; then
    if ! diff -rq "${src}" "${BIN_DIR}/crds/gateway-api" >/dev/null 2>&1; then
      rm -rf "${BIN_DIR}/crds/gateway-api"
      mkdir -p "${BIN_DIR}/crds"
      cp -r "${src}" "${BIN_DIR}/crds/gateway-api"
      log "gateway-api CRDs: installed into ${BIN_DIR}/crds/gateway-api"
    fi
  elif ! cmp -s "${src}" "${BIN_DIR}/${name}"; then
    install -m 0755 "${src}" "${BIN_DIR}/${name}"
    log "${name}: installed into ${BIN_DIR}"
  fi
}

# tools_install [NAME...]: build (or reuse) and install; all tools by default.
# The lock is taken only when something has to be built, so a warm call
# never waits for another build.
tools_install() {
  local names=("$@") t
  [[ ${#names[@]} -gt 0 ]] || names=("${ALL_TOOLS[@]}")
  for t in "${names[@]}"; do
    [[ -e "$(tool_path "${t}")" ]] || locked build_tool "${t}"
    install_tool "${t}"
  done
}
