# shellcheck shell=bash
# `airgap verify`: prove that the running cluster $KIND_CLUSTER is usable:
#   1. every node Ready, at least two of them workers; kube-system pods Ready;
#   2. a locally built tiny image loads with `kind load docker-image`;
#   3. a pod resolves and reaches the API service (CoreDNS, kube-proxy);
#   4. across nodes: a pod on one worker reaches a pod on the other by its
#      IP, and through a Service by its DNS name;
#   5. a NetworkPolicy is enforced: a pod without the allowed label is
#      refused, one with it gets through;
#   6. a default StorageClass exists and a PVC on it binds and is writable;
#   7. `kubectl top nodes` answers through metrics-server.
# Everything it creates lives in one namespace that is deleted at the end,
# and the probe image is removed from the nodes again. Exit status 0 only
# if every check passed.

VERIFY_NS="airgap-verify-$$"
PROBE_IMAGE="${IMAGE_PREFIX}/verify-probe:1"
verify_failures=0
pass() { printf '  PASS  %s\n' "$*"; }
fail() {
  printf '  FAIL  %s\n' "$*"
  verify_failures=$((verify_failures + 1))
}

verify_cleanup() {
  local node
  kc delete namespace "${VERIFY_NS}" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  for node in $("${KIND}" get nodes --name "${KIND_CLUSTER}" 2>/dev/null); do
    "${DOCKER}" exec "${node}" crictl rmi "${PROBE_IMAGE}" >/dev/null 2>&1 || true
  done
}

# A FROM-scratch image of one static binary (verify-probe/main.go), built
# with `docker import` so no base image or registry is involved.
build_probe_image() (
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  go_env
  (cd "${AIRGAP_DIR}/verify-probe" && go build -ldflags='-s -w' -o "${work}/probe" main.go)
  tar --owner=0 --group=0 -C "${work}" -c probe |
    "${DOCKER}" import --change 'ENTRYPOINT ["/probe"]' - "${PROBE_IMAGE}" >/dev/null
)

# probe_pod NAME NODE LABELS CLAIM ARGS...: a restricted pod of the probe
# image on NODE (any node if "-"), with extra LABELS ("k=v,k=v" or "-") and
# the PVC CLAIM at /data (none if "-").
probe_pod() {
  local name=$1 node=$2 labels=$3 claim=$4 args="" a
  shift 4
  for a in "$@"; do args+="\"${a}\", "; done
  {
    cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${VERIFY_NS}
  labels: {probe: "${name}"$([[ "${labels}" == - ]] || printf ', %s' "${labels//=/: }")}
spec:
  restartPolicy: Never
$([[ "${node}" == - ]] || printf '  nodeName: %s\n' "${node}")
  securityContext:
    runAsNonRoot: true
    runAsUser: 65534
    fsGroup: 65534
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: probe
      image: ${PROBE_IMAGE}
      # Loaded with kind load: a pull would fail, and must not be tried.
      imagePullPolicy: Never
      args: [${args%, }]
      env:
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
YAML
    if [[ "${claim}" != - ]]; then
      cat <<YAML
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: ${claim}}
YAML
    fi
  } | kc apply -f - >/dev/null
}

# run_probe NAME NODE LABELS CLAIM ARGS...: probe_pod, then wait until it has
# finished; status 0 if it succeeded. Its output: kc logs NAME.
run_probe() {
  local name=$1 phase="" _
  probe_pod "$@"
  for _ in $(seq 1 90); do
    phase="$(kc -n "${VERIFY_NS}" get pod "${name}" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
    case "${phase}" in
      Succeeded) return 0 ;;
      Failed) return 1 ;;
    esac
    sleep 2
  done
  return 1
}

probe_log() { kc -n "${VERIFY_NS}" logs "$1" 2>&1 | tail -n 3 | tr '\n' ' '; }

verify_nodes() {
  local total workers
  if kc wait --for=condition=Ready node --all --timeout=120s >/dev/null; then
    total="$(kc get nodes -o name | wc -l)"
    mapfile -t WORKERS < <(kc get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
    workers=${#WORKERS[@]}
    if ((workers >= 2)); then
      pass "nodes Ready: ${total} (${workers} workers: ${WORKERS[*]})"
    else
      fail "nodes Ready: ${total}, but ${workers} worker(s): the cross-node checks need two"
    fi
  else
    fail "nodes not Ready"
    kc get nodes
  fi
  if kc -n kube-system wait --for=condition=Ready pod --all --timeout=180s >/dev/null; then
    pass "kube-system pods Ready: $(kc -n kube-system get pods -o name | wc -l)"
  else
    fail "kube-system pods not Ready"
    kc -n kube-system get pods -o wide
  fi
}

verify_cross_node() {
  local server=${WORKERS[0]} client=${WORKERS[1]} ip url
  probe_pod server "${server}" - - serve :8080
  kc -n "${VERIFY_NS}" expose pod server --name server --port 8080 >/dev/null
  if ! kc -n "${VERIFY_NS}" wait --for=condition=Ready pod/server --timeout=120s >/dev/null; then
    fail "server pod on ${server} not Ready"
    kc -n "${VERIFY_NS}" describe pod server | tail -n 10
    return
  fi
  ip="$(kc -n "${VERIFY_NS}" get pod server -o jsonpath='{.status.podIP}')"
  if run_probe to-pod "${client}" - - get "http://${ip}:8080/" &&
    [[ "$(probe_log to-pod)" == *"\"${server} server\""* ]]; then
    pass "pod-to-pod across nodes: ${client} -> ${server} (${ip}): $(probe_log to-pod)"
  else
    fail "pod-to-pod across nodes: ${client} -> ${server} (${ip}): $(probe_log to-pod)"
  fi
  url="http://server.${VERIFY_NS}.svc.cluster.local:8080/"
  if run_probe to-service "${client}" - - get "${url}"; then
    pass "Service across nodes (DNS ${url#http://}): $(probe_log to-service)"
  else
    fail "Service across nodes (DNS ${url#http://}): $(probe_log to-service)"
  fi

  # Only pods labelled access=granted may reach the server.
  kc apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: server-ingress
  namespace: ${VERIFY_NS}
spec:
  podSelector: {matchLabels: {probe: server}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {access: granted}}}]
YAML
  # The policy engines program their rules within a second or two.
  sleep 5
  if run_probe denied "${client}" - - refused "${url}"; then
    pass "NetworkPolicy: a pod without access=granted is refused: $(probe_log denied)"
  else
    fail "NetworkPolicy not enforced: $(probe_log denied)"
  fi
  if run_probe granted "${client}" access=granted - get "${url}"; then
    pass "NetworkPolicy: a pod with access=granted gets through: $(probe_log granted)"
  else
    fail "NetworkPolicy: the allowed pod was refused too: $(probe_log granted)"
  fi
}

verify_storage() {
  local default_sc
  default_sc="$(kc get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{"\n"}{end}')"
  if [[ -n "${default_sc}" ]]; then
    pass "default StorageClass: ${default_sc}"
  else
    fail "no default StorageClass"
  fi
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: ${VERIFY_NS}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 16Mi
YAML
  # Binding waits for the first consumer (WaitForFirstConsumer): the pod.
  if run_probe pvc - - data write /data &&
    kc -n "${VERIFY_NS}" wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=60s >/dev/null; then
    pass "PVC bound ($(kc -n "${VERIFY_NS}" get pvc data -o jsonpath='{.spec.volumeName}')) and writable: $(probe_log pvc)"
  else
    fail "PVC did not bind or was not writable"
    kc -n "${VERIFY_NS}" describe pvc data | tail -n 8 || true
  fi
}

verify_metrics() {
  # metrics-server needs one or two scrapes (15 s apart) before it has data.
  local top="" _
  for _ in $(seq 1 40); do
    if top="$(kc top nodes --no-headers 2>/dev/null)" && [[ -n "${top}" ]]; then break; fi
    top=""
    sleep 5
  done
  if [[ -n "${top}" ]]; then
    pass "kubectl top nodes: $(tr -s ' ' <<<"${top}" | tr '\n' ';')"
  else
    fail "kubectl top nodes gave no answer in 200s"
  fi
}

verify_cluster() {
  WORKERS=()
  cluster_exists || die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"
  trap verify_cleanup EXIT
  log "verifying cluster ${KIND_CLUSTER} (context ${CONTEXT})"
  verify_nodes
  build_probe_image
  if cluster_load "${PROBE_IMAGE}" >/dev/null 2>&1; then
    pass "kind load docker-image ${PROBE_IMAGE} (every node)"
  else
    fail "kind load docker-image ${PROBE_IMAGE}"
  fi
  kc create namespace "${VERIFY_NS}" >/dev/null
  if run_probe net - - - net; then
    pass "a pod resolved and reached the API service: $(probe_log net)"
  else
    fail "probe pod did not complete: $(probe_log net)"
  fi
  if ((${#WORKERS[@]} >= 2)); then verify_cross_node; fi
  verify_storage
  verify_metrics
  ((verify_failures == 0)) || die "${verify_failures} check(s) failed"
  log "all checks passed"
}
