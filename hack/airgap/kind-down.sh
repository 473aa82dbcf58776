#!/usr/bin/env bash
# Delete the kind cluster $KIND_CLUSTER and leave the host as it was before
# kind-up.sh: no node containers, no leftover "kind" docker network, the
# host sysctls kubelet rewrote restored, no temporary files. Built images and
# the build cache are kept (that is what makes the next kind-up fast).
# Safe to run when there is no cluster.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$(state_dir)"

if [[ -x "${KIND}" ]] && "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  # `kind delete` never asks for --privileged, so no wrapper is needed.
  "${KIND}" delete cluster --name "${KIND_CLUSTER}"
else
  # Without the kind binary (or a registered cluster) remove the node
  # containers by kind's cluster label directly.
  ids="$("${DOCKER}" ps -aq --filter "label=io.x-k8s.kind.cluster=${KIND_CLUSTER}")"
  if [[ -n "${ids}" ]]; then
    log "removing leftover node containers of ${KIND_CLUSTER}"
    # shellcheck disable=SC2086 # one id per word
    "${DOCKER}" rm -f -v ${ids} >/dev/null
  fi
  log "no cluster ${KIND_CLUSTER}"
fi

if ! kind_nodes_running; then
  # kind creates the "kind" network on first use and never removes it.
  if "${DOCKER}" network inspect kind >/dev/null 2>&1 &&
    [[ "$("${DOCKER}" network inspect -f '{{len .Containers}}' kind)" == 0 ]]; then
    "${DOCKER}" network rm kind >/dev/null && log "removed docker network kind"
  fi
  # The last kind node is gone: put back the sysctls kubelet changed.
  if [[ -f "${HOST_SYSCTL_FILE}" ]]; then
    while IFS='=' read -r key value; do
      [[ -n "${key}" ]] || continue
      if [[ "$(sysctl -n "${key}" 2>/dev/null)" != "${value}" ]]; then
        if sysctl -q -w "${key}=${value}" >/dev/null 2>&1; then
          log "restored ${key}=${value}"
        else
          log "WARN: could not restore ${key}=${value}"
        fi
      fi
    done <"${HOST_SYSCTL_FILE}"
    rm -f "${HOST_SYSCTL_FILE}"
  fi
fi

rm -rf "${STATE}"
