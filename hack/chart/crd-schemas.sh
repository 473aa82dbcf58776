#!/usr/bin/env bash
# JSON schemas of the CRDs the chart renders, for kubeconform, offline: the
# Gateway API (HTTPRoute) and the Prometheus Operator (ServiceMonitor,
# PrometheusRule). Both come from Go modules the module proxy serves, which
# carry the CRD manifests. Prints the schema directory (cached, keyed by the
# versions).
#
# GATEWAY_API_CRDS / PROMETHEUS_OPERATOR_CRDS: directories of CRD manifests;
# empty: downloaded with `go mod download` at the versions below.
# PYTHON: an interpreter with PyYAML (the project's venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# GATEWAY_API_VERSION, PROMETHEUS_OPERATOR_VERSION: the one file of pins.
# shellcheck source=hack/airgap/versions.env
source "${here}/../airgap/versions.env"
# A command line, e.g. "uv run --frozen python".
read -r -a python <<<"${PYTHON:-python3}"
cache="${CRD_SCHEMAS:-${XDG_CACHE_HOME:-$HOME/.cache}/storefront/crd-schemas/gateway-${GATEWAY_API_VERSION}-prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}}"

if [[ -s "${cache}/gateway.networking.k8s.io/httproute_v1.json" && -s "${cache}/monitoring.coreos.com/prometheusrule_v1.json" ]]; then
  echo "${cache}"
  exit 0
fi

module_dir() {
  GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$1" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}
gateway="${GATEWAY_API_CRDS:-}"
if [[ -z "${gateway}" ]]; then
  gateway="$(module_dir "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}")/config/crd/standard"
fi
operator="${PROMETHEUS_OPERATOR_CRDS:-}"
if [[ -z "${operator}" ]]; then
  operator="$(module_dir "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}")/example/prometheus-operator-crd"
fi
for dir in "${gateway}" "${operator}"; do
  [[ -d "${dir}" ]] || { echo "no CRD directory ${dir}" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
"${python[@]}" "${here}/crd_to_jsonschema.py" "${work}/schemas" "${gateway}" "${operator}" >&2
mkdir -p "$(dirname "${cache}")"
rm -rf "${cache}"
mv "${work}/schemas" "${cache}"
echo "${cache}"
