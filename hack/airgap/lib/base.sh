# shellcheck shell=bash
# shellcheck disable=SC2034 # names defined here are used by the other modules
# Base module of hack/airgap/airgap: versions, image names, cache paths, the
# build lock, logging, and wrappers for the commands (go, docker) whose
# defaults differ on our machines. Sourced first; defines no commands.

AIRGAP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="${REPO_ROOT:-$(cd "${AIRGAP_DIR}/../.." && pwd)}"

set -a
# shellcheck source=hack/airgap/versions.env
. "${AIRGAP_DIR}/versions.env"
set +a
# shellcheck source=hack/lib/docker.sh
. "${AIRGAP_DIR}/../lib/docker.sh"

# The cache lives outside the clone so that a fresh clone on the same machine
# (CI clones afresh every run) reuses everything already built.
AIRGAP_CACHE="${AIRGAP_CACHE:-${HOME}/.cache/storefront-airgap}"
# Parallel compile jobs: the machines have 2 cores; more only thrashes.
AIRGAP_JOBS="${AIRGAP_JOBS:-2}"
KIND_CLUSTER="${KIND_CLUSTER:-storefront}"
BIN_DIR="${BIN_DIR:-${REPO_ROOT}/bin}"
KIND="${BIN_DIR}/kind"
KUBECTL="${BIN_DIR}/kubectl"

# --- image names (no registry host anywhere, by design) --------------------
# kubeadm's imageRepository: a name without a dot is never taken for a host.
IMAGE_REPO=airgap
# Our own non-Kubernetes images.
IMAGE_PREFIX=storefront-airgap

minbase_image() { printf '%s/debian:%s-minbase' "${IMAGE_PREFIX}" "$1"; }
MINBASE_IMAGE="$(minbase_image "${DEBIAN_SUITE}")"
DB_MINBASE_IMAGE="$(minbase_image "${DB_DEBIAN_SUITE}")"
KIND_BASE_IMAGE="${IMAGE_PREFIX}/kind-base:${KIND_VERSION}-${DEBIAN_SUITE}-r${KIND_BASE_REVISION}"
AIRGAP_NODE_IMAGE="${AIRGAP_NODE_IMAGE:-${IMAGE_PREFIX}/kind-node:${KUBERNETES_VERSION}-r${NODE_IMAGE_REVISION}}"
PAUSE_IMAGE="${IMAGE_REPO}/pause:${PAUSE_VERSION}"
ETCD_IMAGE="${IMAGE_REPO}/etcd:${ETCD_IMAGE_TAG}"
COREDNS_IMAGE="${IMAGE_REPO}/coredns:${COREDNS_VERSION}"
METRICS_SERVER_IMAGE="${METRICS_SERVER_IMAGE:-${IMAGE_REPO}/metrics-server:${METRICS_SERVER_VERSION}}"
LOCAL_PATH_IMAGE="${IMAGE_REPO}/local-path-provisioner:${LOCAL_PATH_PROVISIONER_VERSION}"
LOCAL_PATH_HELPER_IMAGE="${IMAGE_REPO}/local-path-helper:${DEBIAN_SUITE}"
FLANNEL_IMAGE="${IMAGE_REPO}/flannel:${FLANNEL_VERSION}"
NETPOL_IMAGE="${IMAGE_REPO}/kube-network-policies:${KUBE_NETWORK_POLICIES_VERSION}"
# Tagged by major, like the chart's values-airgap.yaml names them.
POSTGRES_IMAGE="${IMAGE_PREFIX}/postgres:${POSTGRES_MAJOR}"
REDIS_IMAGE="${IMAGE_PREFIX}/redis:${REDIS_MAJOR}"
KUBE_IMAGE_NAMES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

# Images preloaded into the node's containerd (pinned, like kind does).
node_preload_images() {
  local n
  for n in "${KUBE_IMAGE_NAMES[@]}"; do echo "${IMAGE_REPO}/${n}:${KUBERNETES_VERSION}"; done
  printf '%s\n' "${PAUSE_IMAGE}" "${ETCD_IMAGE}" "${COREDNS_IMAGE}" "${METRICS_SERVER_IMAGE}" \
    "${LOCAL_PATH_IMAGE}" "${LOCAL_PATH_HELPER_IMAGE}" "${FLANNEL_IMAGE}" "${NETPOL_IMAGE}"
}

# --- logging -------------------------------------------------------------------
log() { printf '[airgap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- cache and lock --------------------------------------------------------------
# A cache entry is a directory; it counts only once its .complete marker is
# written, so an interrupted build is redone instead of half-reused.
cache_dir() { printf '%s/%s/%s' "${AIRGAP_CACHE}" "$1" "$2"; }
cache_ok() { [[ -f "$1/.complete" ]]; }
cache_mark() { date -u +%FT%TZ >"$1/.complete"; }

# build_lock: one build at a time per cache (CI and a developer may share
# this machine). Held on fd 9 until the process (or subshell) that took it
# ends; taking it again in the same process is a no-op.
build_lock() {
  [[ -z "${AIRGAP_LOCK_HELD:-}" ]] || return 0
  mkdir -p "${AIRGAP_CACHE}/tmp"
  exec 9>"${AIRGAP_CACHE}/.lock"
  if ! flock -n 9; then
    log "waiting for another build to finish (${AIRGAP_CACHE}/.lock)"
    flock 9
  fi
  AIRGAP_LOCK_HELD=1
}
# locked CMD...: run CMD in a subshell that holds the build lock, so the lock
# is released as soon as CMD is done (kind-up must not hold it while the
# cluster starts).
locked() { (build_lock && "$@"); }

# --- docker ----------------------------------------------------------------------
image_exists() { "${DOCKER}" image inspect "$1" >/dev/null 2>&1; }

# docker_build IMAGE CONTEXT [BASE [DOCKER BUILD FLAGS...]]: build with
# BuildKit FROM BASE (default: the cluster minbase). BuildKit resolves FROM
# against the local image store first, so nothing is pulled.
# AIRGAP_DOCKER_BUILD_FLAGS adds flags, e.g. --no-cache to pick up new Debian
# package versions.
docker_build() {
  local image=$1 context=$2 base=${3:-${MINBASE_IMAGE}} extra=()
  shift 2
  [[ $# -eq 0 ]] || shift
  read -r -a extra <<<"${AIRGAP_DOCKER_BUILD_FLAGS:-}"
  DOCKER_BUILDKIT=1 "${DOCKER}" build -q "${extra[@]}" "$@" --build-arg "BASE=${base}" \
    -t "${image}" "${context}" >/dev/null
}

# --- Go ----------------------------------------------------------------------------
go_env() {
  export PATH="/usr/local/go/bin:${PATH}"
  # Never fetch another toolchain: only the module proxy is reachable and
  # we want the installed Go to be the one that builds.
  export GOTOOLCHAIN=local
  # Static binaries: they run in minimal images and in the kind node.
  export CGO_ENABLED=0
  # No VCS stamping: module-cache directories are not git checkouts.
  export GOFLAGS="-buildvcs=false -trimpath"
  # A module's own go.work (Prometheus ships one) names directories that are
  # not in its module zip.
  export GOWORK=off
}

# go_mod_dir MODULE@VERSION: download a module and print its directory in
# the module cache. Building inside that directory makes the module the main
# module, so its own replace directives apply (go install MOD@VER refuses
# modules that have any).
go_mod_dir() {
  local json dir
  json="$(go mod download -json "$1")" || die "go mod download $1 failed"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"${json}")"
  [[ -n "${dir}" && -d "${dir}" ]] || die "no module directory for $1: ${json}"
  printf '%s' "${dir}"
}

# go_build_at DIR OUT PKG [go build flags...]: build PKG with DIR as the
# main module into OUT, atomically (a partial binary never lands at OUT).
go_build_at() {
  local dir=$1 out=$2 pkg=$3
  shift 3
  mkdir -p "$(dirname "${out}")"
  (cd "${dir}" && go build -p "${AIRGAP_JOBS}" -o "${out}.tmp" "$@" "${pkg}")
  mv -f "${out}.tmp" "${out}"
}

# cached_build NAME VERSION OUT FUNCTION [ARGS...]: run FUNCTION (which
# writes OUT) unless OUT already exists.
cached_build() {
  local name=$1 version=$2 out=$3
  shift 3
  if [[ -x "${out}" ]]; then
    log "${name} ${version}: cached"
    return 0
  fi
  log "${name} ${version}: building"
  go_env
  "$@"
}

# --- per-cluster state (temporary; removed by `airgap down`) -----------------------
# Holds the generated kind config, the mode and whether the docker wrapper is
# in use.
state_dir() { printf '%s/storefront-kind-%s' "${TMPDIR:-/tmp}" "${KIND_CLUSTER}"; }
