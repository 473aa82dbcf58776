# shellcheck shell=bash
# shellcheck disable=SC2034 # the names defined here are used by the scripts that source it
# Helpers shared by every hack/airgap script. Source it; do not run it.
#
# It loads versions.env, names every image and cache path in one place, and
# wraps the few commands (go, docker) whose defaults differ on our machines.

AIRGAP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="${REPO_ROOT:-$(cd "${AIRGAP_DIR}/../.." && pwd)}"

set -a
# shellcheck source=hack/airgap/versions.env
. "${AIRGAP_DIR}/versions.env"
set +a

# The cache lives outside the clone so that a fresh clone on the same machine
# (CI clones afresh every run) reuses everything already built.
AIRGAP_CACHE="${AIRGAP_CACHE:-${HOME}/.cache/storefront-airgap}"
# Parallel compile jobs: the machines have 2 cores; more only thrashes.
AIRGAP_JOBS="${AIRGAP_JOBS:-2}"
KIND_CLUSTER="${KIND_CLUSTER:-storefront}"
BIN_DIR="${BIN_DIR:-${REPO_ROOT}/bin}"
KIND="${KIND:-${BIN_DIR}/kind}"
KUBECTL="${KUBECTL:-${BIN_DIR}/kubectl}"

# /usr/local/bin/docker (if present) is a newer client that cannot use
# BuildKit without buildx; the Debian client in /usr/bin can. Prefer it.
if [[ -z "${DOCKER:-}" ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

# --- image names (no registry host anywhere, by design) --------------------
# kubeadm's imageRepository: a name without a dot is never taken for a host.
IMAGE_REPO="${IMAGE_REPO:-airgap}"
# Our own non-Kubernetes images.
IMAGE_PREFIX="${IMAGE_PREFIX:-storefront-airgap}"

MINBASE_IMAGE="${IMAGE_PREFIX}/debian:${DEBIAN_SUITE}-minbase"
KIND_BASE_IMAGE="${IMAGE_PREFIX}/kind-base:${KIND_VERSION}-${DEBIAN_SUITE}-r${NODE_IMAGE_REVISION}"
AIRGAP_NODE_IMAGE="${AIRGAP_NODE_IMAGE:-${IMAGE_PREFIX}/kind-node:${KUBERNETES_VERSION}-r${NODE_IMAGE_REVISION}}"
PAUSE_IMAGE="${IMAGE_REPO}/pause:${PAUSE_VERSION}"
ETCD_IMAGE="${IMAGE_REPO}/etcd:${ETCD_IMAGE_TAG}"
COREDNS_IMAGE="${IMAGE_REPO}/coredns:${COREDNS_VERSION}"
METRICS_SERVER_IMAGE="${METRICS_SERVER_IMAGE:-${IMAGE_REPO}/metrics-server:${METRICS_SERVER_VERSION}}"
LOCAL_PATH_IMAGE="${IMAGE_REPO}/local-path-provisioner:${LOCAL_PATH_PROVISIONER_VERSION}"
LOCAL_PATH_HELPER_IMAGE="${IMAGE_REPO}/local-path-helper:${DEBIAN_SUITE}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-${IMAGE_PREFIX}/postgres:15}"
REDIS_IMAGE="${REDIS_IMAGE:-${IMAGE_PREFIX}/redis:7}"
KUBE_IMAGE_NAMES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

# Images preloaded into the node's containerd (pinned, like kind does).
node_preload_images() {
  local n
  for n in "${KUBE_IMAGE_NAMES[@]}"; do echo "${IMAGE_REPO}/${n}:${KUBERNETES_VERSION}"; done
  echo "${PAUSE_IMAGE}" "${ETCD_IMAGE}" "${COREDNS_IMAGE}" \
    "${METRICS_SERVER_IMAGE}" "${LOCAL_PATH_IMAGE}" "${LOCAL_PATH_HELPER_IMAGE}" | tr ' ' '\n'
}

# --- per-cluster state (temporary; removed by kind-down.sh) ----------------------
# Holds the generated kind config and whether the docker wrapper is in use.
state_dir() { printf '%s/storefront-kind-%s' "${TMPDIR:-/tmp}" "${KIND_CLUSTER}"; }
# Host sysctls that kubelet rewrites at start (it runs with the host's
# kernel): saved before the first kind node starts, restored after the last
# one is gone. Shared by all clusters on the host.
HOST_SYSCTL_FILE="${TMPDIR:-/tmp}/storefront-kind-host-sysctls"
HOST_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# kind_nodes_running: are there kind node containers (any cluster)?
kind_nodes_running() {
  [[ -n "$("${DOCKER}" ps -aq --filter label=io.x-k8s.kind.cluster 2>/dev/null)" ]]
}

# privileged_works IMAGE: can this host run `docker run --privileged`?
# Decided by trying, with the node image itself, so no other image is needed.
privileged_works() {
  timeout 120 "${DOCKER}" run --rm --privileged --network none --entrypoint true "$1" >/dev/null 2>&1
}

# --- logging ---------------------------------------------------------------
log() { printf '[airgap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- cache helpers -----------------------------------------------------------
# A cache entry is a directory; it counts only once its .complete marker is
# written, so an interrupted build is redone instead of half-reused.
cache_dir() { printf '%s/%s/%s' "${AIRGAP_CACHE}" "$1" "$2"; }
cache_ok() { [[ -f "$1/.complete" ]]; }
cache_mark() { date -u +%FT%TZ >"$1/.complete"; }

# build_lock: one build at a time per cache (CI and a developer may share
# this machine). Scripts started by a locked script inherit the lock (fd 9
# and AIRGAP_LOCK_HELD) instead of waiting for themselves.
build_lock() {
  [[ -z "${AIRGAP_LOCK_HELD:-}" ]] || return 0
  mkdir -p "${AIRGAP_CACHE}"
  exec 9>"${AIRGAP_CACHE}/.lock"
  if ! flock -n 9; then
    log "waiting for another build to finish (${AIRGAP_CACHE}/.lock)"
    flock 9
  fi
  export AIRGAP_LOCK_HELD=1
}

image_exists() { "${DOCKER}" image inspect "$1" >/dev/null 2>&1; }

# docker_build IMAGE CONTEXT: build with BuildKit FROM our Debian minbase
# (BuildKit resolves FROM against the local image store first, so nothing
# is pulled). AIRGAP_DOCKER_BUILD_FLAGS adds flags, e.g. --no-cache to pick
# up new Debian package versions.
docker_build() {
  local extra=()
  read -r -a extra <<<"${AIRGAP_DOCKER_BUILD_FLAGS:-}"
  DOCKER_BUILDKIT=1 "${DOCKER}" build -q "${extra[@]}" --build-arg "BASE=${MINBASE_IMAGE}" \
    -t "$1" "$2" >/dev/null
}

# --- Go ------------------------------------------------------------------------
go_env() {
  export PATH="/usr/local/go/bin:${PATH}"
  # Never fetch another toolchain: only the module proxy is reachable and
  # we want the installed Go to be the one that builds.
  export GOTOOLCHAIN=local
  # Static binaries: they run in minimal images and in the kind node.
  export CGO_ENABLED=0
  # No VCS stamping: module-cache directories are not git checkouts.
  export GOFLAGS="-buildvcs=false -trimpath"
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
