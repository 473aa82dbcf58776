#!/usr/bin/env bash
# Check that the running kind cluster $KIND_CLUSTER is usable, for real:
#   1. every node and every kube-system pod is Ready;
#   2. a locally built tiny image loads with `kind load docker-image`;
#   3. a pod from it runs to completion, resolving and reaching the API
#      service through CoreDNS and kube-proxy;
#   4. a default StorageClass exists and a PVC on it binds and is writable;
#   5. `kubectl top nodes` answers through metrics-server.
# Everything it creates lives in one namespace that is deleted at the end,
# and the probe image is removed from the node again. Exit status 0 only if
# every check passed.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTEXT="kind-${KIND_CLUSTER}"
NS="airgap-verify-$$"
PROBE_IMAGE="${IMAGE_PREFIX}/verify-probe:1"
kc() { "${KUBECTL}" --context "${CONTEXT}" "$@"; }

failures=0
pass() { printf '  PASS  %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }

cleanup() {
  kc delete namespace "${NS}" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  local node
  for node in $("${KIND}" get nodes --name "${KIND_CLUSTER}" 2>/dev/null); do
    "${DOCKER}" exec "${node}" crictl rmi "${PROBE_IMAGE}" >/dev/null 2>&1 || true
  done
}

"${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}" || die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"
trap cleanup EXIT
log "verifying cluster ${KIND_CLUSTER} (context ${CONTEXT})"

# 1. nodes and system pods ----------------------------------------------------
if kc wait --for=condition=Ready node --all --timeout=120s >/dev/null; then
  pass "nodes Ready: $(kc get nodes -o name | wc -l)"
else
  fail "nodes not Ready"; kc get nodes
fi
if kc -n kube-system wait --for=condition=Ready pod --all --timeout=180s >/dev/null; then
  pass "kube-system pods Ready: $(kc -n kube-system get pods -o name | wc -l)"
else
  fail "kube-system pods not Ready"; kc -n kube-system get pods -o wide
fi

# 2. kind load of a locally built image ---------------------------------------------
# A FROM-scratch image of one static binary (verify-probe/main.go), built
# with `docker import` so no base image or registry is involved.
work="$(mktemp -d)"
(cd "${AIRGAP_DIR}/verify-probe" && CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local \
  go build -ldflags='-s -w' -o "${work}/probe" main.go)
tar --owner=0 --group=0 -C "${work}" -c probe |
  "${DOCKER}" import --change 'ENTRYPOINT ["/probe"]' - "${PROBE_IMAGE}" >/dev/null
rm -rf "${work}"
if "${AIRGAP_DIR}/kind-load.sh" "${PROBE_IMAGE}" >/dev/null 2>&1; then
  pass "kind load docker-image ${PROBE_IMAGE}"
else
  fail "kind load docker-image ${PROBE_IMAGE}"
fi

kc create namespace "${NS}" >/dev/null

# run_pod NAME CLAIM ARGS...: run the probe image as a pod (with the PVC
# CLAIM at /data unless CLAIM is "-") and wait until it has finished.
run_pod() {
  local name=$1 claim=$2 args="" a
  shift 2
  for a in "$@"; do args+="\"${a}\", "; done
  {
    cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65534
    fsGroup: 65534
  containers:
    - name: probe
      image: ${PROBE_IMAGE}
      # Loaded with kind load: a pull would fail, and must not be tried.
      imagePullPolicy: Never
      args: [${args%, }]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
EOF
    if [[ "${claim}" != - ]]; then
      cat <<EOF
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: ${claim}}
EOF
    fi
  } | kc apply -f - >/dev/null
  local phase="" _
  for _ in $(seq 1 90); do
    phase="$(kc -n "${NS}" get pod "${name}" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
    case "${phase}" in
      Succeeded) return 0 ;;
      Failed) return 1 ;;
    esac
    sleep 2
  done
  return 1
}

# 3. a pod runs to completion -------------------------------------------------------
if run_pod net - net; then
  pass "pod ran to completion: $(kc -n "${NS}" logs net)"
else
  fail "probe pod did not complete"; kc -n "${NS}" get pod net -o wide || true; kc -n "${NS}" logs net || true
fi

# 4. storage -----------------------------------------------------------------------
default_sc="$(kc get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{"\n"}{end}')"
if [[ -n "${default_sc}" ]]; then
  pass "default StorageClass: ${default_sc}"
else
  fail "no default StorageClass"
fi
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: ${NS}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 16Mi
EOF
# Binding waits for the first consumer (WaitForFirstConsumer): the pod.
if run_pod pvc data write /data &&
  kc -n "${NS}" wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=60s >/dev/null; then
  pass "PVC bound ($(kc -n "${NS}" get pvc data -o jsonpath='{.spec.volumeName}')) and writable: $(kc -n "${NS}" logs pvc)"
else
  fail "PVC did not bind or was not writable"; kc -n "${NS}" describe pvc data | tail -n 8 || true
fi

# 5. metrics -------------------------------------------------------------------------
# metrics-server needs one or two scrapes (15 s apart) before it has data.
top=""
for _ in $(seq 1 40); do
  if top="$(kc top nodes --no-headers 2>/dev/null)" && [[ -n "${top}" ]]; then break; fi
  top=""
  sleep 5
done
if [[ -n "${top}" ]]; then
  pass "kubectl top nodes: ${top}"
else
  fail "kubectl top nodes gave no answer in 200s"
fi

if [[ "${failures}" -gt 0 ]]; then
  die "${failures} check(s) failed"
fi
log "all checks passed"
