# shellcheck shell=bash
# CloudNativePG, for the chart's `database.mode: cloudnativepg`, built here
# like the rest of the cluster (no registry) and cached the same way:
#   - the operator: cmd/manager of github.com/cloudnative-pg/cloudnative-pg at
#     $CNPG_VERSION, cached as $AIRGAP_CACHE/cloudnative-pg/<version>/manager,
#     in the image $CNPG_OPERATOR_IMAGE;
#   - its manifest (CRDs, RBAC, webhooks, the Deployment in cnpg-system): the
#     file upstream publishes for the release, releases/cnpg-<version>.yaml,
#     read from the same module zip; in air-gapped mode with our image names;
#   - the operand $CNPG_POSTGRES_IMAGE (PostgreSQL $POSTGRES_MAJOR) and the
#     pooler $CNPG_PGBOUNCER_IMAGE (PgBouncer $PGBOUNCER_VERSION), from Debian
#     $DB_DEBIAN_SUITE's packages (recipes: images/cnpg-*).
# Internet mode applies the published manifest unchanged: the operator's own
# images at the same version.
#
# Commands: airgap cnpg-images [--load]   the `cnpg` build step
#           airgap cnpg-install           operator into the running cluster
#           airgap cnpg-manifest          print the manifest cnpg-install applies
#           airgap cnpg-helm-flags        the chart flags for the cluster's mode

CNPG_MODULE=github.com/cloudnative-pg/cloudnative-pg
CNPG_NAMESPACE=cnpg-system
CNPG_OPERATOR_IMAGE="${IMAGE_PREFIX}/cloudnative-pg:${CNPG_VERSION#v}"
# The tag starts with the major: the operator reads the PostgreSQL major
# from it (docs/src/container_images.md).
CNPG_POSTGRES_IMAGE="${IMAGE_PREFIX}/cnpg-postgresql:${POSTGRES_MAJOR}"
CNPG_PGBOUNCER_IMAGE="${IMAGE_PREFIX}/cnpg-pgbouncer:${PGBOUNCER_VERSION}"

cnpg_image_names() { printf '%s\n' "${CNPG_OPERATOR_IMAGE}" "${CNPG_POSTGRES_IMAGE}" "${CNPG_PGBOUNCER_IMAGE}"; }

cnpg_module_dir() {
  go_env
  go_mod_dir "${CNPG_MODULE}@${CNPG_VERSION}"
}

cnpg_manager_path() { printf '%s/manager' "$(cache_dir cloudnative-pg "${CNPG_VERSION}")"; }

cnpg_manager_build_binary() {
  local dir version=${CNPG_VERSION#v}
  dir="$(cnpg_module_dir)"
  # The version stamps the Makefile sets (the operator reports them, and
  # compares its own version with the instance managers' it copied).
  go_build_at "${dir}" "$(cnpg_manager_path)" ./cmd/manager -ldflags="-s -w \
    -X ${CNPG_MODULE}/pkg/versions.buildVersion=${version} \
    -X ${CNPG_MODULE}/pkg/versions.buildCommit=module-${CNPG_VERSION} \
    -X ${CNPG_MODULE}/pkg/versions.buildDate=module"
}

# cnpg_recipe_hash DIR ARGS...: what an image is built from (its recipe
# directory and build arguments). Images carry it as a label, so a changed
# recipe rebuilds an image whose tag (a version) did not change.
cnpg_recipe_hash() {
  local dir=$1
  shift
  { find "${dir}" -type f -print0 | sort -z | xargs -0 sha256sum | sed 's|  .*/| |'; printf '%s\n' "$@"; } |
    sha256sum | cut -c1-16
}

# cnpg_image_build IMAGE RECIPE [FILE...] -- [docker build flags...]: build
# IMAGE from images/RECIPE plus bin/<each FILE>, unless the image with the
# same recipe hash is present.
cnpg_image_build() {
  local image=$1 recipe=$2 files=() flags=() hash ctx status=0 f
  shift 2
  while [[ $# -gt 0 && "$1" != -- ]]; do files+=("$1"); shift; done
  [[ $# -eq 0 ]] || shift
  flags=("$@")
  hash="$(cnpg_recipe_hash "${AIRGAP_DIR}/images/${recipe}" "${flags[@]}" "${DB_MINBASE_IMAGE}" \
    "${files[@]/#/binary:}" "$(for f in "${files[@]}"; do sha256sum <"${f}"; done)")"
  if [[ "$("${DOCKER}" image inspect -f '{{index .Config.Labels "storefront.airgap.recipe"}}' "${image}" 2>/dev/null)" == "${hash}" ]]; then
    log "${image}: present"
    return 0
  fi
  log "${image}: building"
  ctx="$(mktemp -d "${AIRGAP_CACHE}/tmp/ctx.XXXXXX")"
  cp -a "${AIRGAP_DIR}/images/${recipe}/." "${ctx}/"
  mkdir -p "${ctx}/bin"
  for f in "${files[@]}"; do install -m 0755 "${f}" "${ctx}/bin/"; done
  docker_build "${image}" "${ctx}" "${DB_MINBASE_IMAGE}" "${flags[@]}" \
    --label "storefront.airgap.recipe=${hash}" || status=$?
  rm -rf "${ctx}"
  [[ "${status}" == 0 ]] || die "docker build of ${image} failed"
}

# cnpg_images_build: the `cnpg` build step.
cnpg_images_build() {
  minbase_build "${DB_DEBIAN_SUITE}"
  cached_build cloudnative-pg "${CNPG_VERSION}" "$(cnpg_manager_path)" cnpg_manager_build_binary
  cnpg_image_build "${CNPG_OPERATOR_IMAGE}" cnpg-operator "$(cnpg_manager_path)"
  cnpg_image_build "${CNPG_POSTGRES_IMAGE}" cnpg-postgresql -- --build-arg "PG_MAJOR=${POSTGRES_MAJOR}"
  cnpg_image_build "${CNPG_PGBOUNCER_IMAGE}" cnpg-pgbouncer -- --build-arg "PG_MAJOR=${POSTGRES_MAJOR}"
  local version
  version="$("${DOCKER}" run --rm --entrypoint pgbouncer "${CNPG_PGBOUNCER_IMAGE}" --version | head -n 1)"
  [[ "${version}" == *" ${PGBOUNCER_VERSION}."* ]] ||
    die "${CNPG_PGBOUNCER_IMAGE} runs '${version}', versions.env pins PGBOUNCER_VERSION=${PGBOUNCER_VERSION}"
}

# cnpg_manifest [airgap|internet]: the operator's manifest for that mode
# (default: the cluster's). Air-gapped: the operator image is ours, never
# pulled, and its configuration names our operand and pooler images as the
# defaults.
cnpg_manifest() {
  local mode=${1:-} release upstream
  [[ -n "${mode}" ]] || mode="$(cluster_mode)"
  release="$(cnpg_module_dir)/releases/cnpg-${CNPG_VERSION#v}.yaml"
  [[ -r "${release}" ]] || die "no ${release##*/} in the ${CNPG_MODULE} module at ${CNPG_VERSION}"
  if [[ "${mode}" != airgap ]]; then
    cat "${release}"
    return 0
  fi
  # The published image name, as the manifest itself spells it.
  upstream="$(awk '/name: OPERATOR_IMAGE_NAME/ { getline; print $2; exit }' "${release}")"
  [[ -n "${upstream}" ]] || die "no OPERATOR_IMAGE_NAME in ${release}"
  sed -e "s|${upstream}|${CNPG_OPERATOR_IMAGE}|g" \
    -e 's|imagePullPolicy: Always|imagePullPolicy: IfNotPresent|' "${release}"
  cat <<YAML
---
# Air-gapped defaults for Clusters and Poolers that name no image.
apiVersion: v1
kind: ConfigMap
metadata:
  name: cnpg-controller-manager-config
  namespace: ${CNPG_NAMESPACE}
data:
  POSTGRES_IMAGE_NAME: ${CNPG_POSTGRES_IMAGE}
  PGBOUNCER_IMAGE_NAME: ${CNPG_PGBOUNCER_IMAGE}
YAML
}

# cnpg_install: the operator in the running cluster, ready to admit Clusters
# (idempotent; ~30 s when already installed). Air-gapped: builds what is
# missing and loads the three images into every node.
cnpg_install() {
  local mode start
  start=$(date +%s)
  cluster_exists || die "no kind cluster ${KIND_CLUSTER} (make kind-up first)"
  mode="$(cluster_mode)"
  if [[ "${mode}" == airgap ]]; then
    locked cnpg_images_build
    mapfile -t images < <(cnpg_image_names)
    cluster_load "${images[@]}"
  fi
  # The operator's namespace runs under the Pod Security Standard
  # "restricted" (its pods comply), labelled before its pods exist. The
  # labels are applied server-side by a field manager of their own: the
  # manifest below declares the Namespace too, and an apply by the same
  # manager that omits them would remove them.
  kc create namespace "${CNPG_NAMESPACE}" --dry-run=client -o yaml |
    kc label --local -f - -o yaml pod-security.kubernetes.io/enforce=restricted \
      pod-security.kubernetes.io/enforce-version=latest pod-security.kubernetes.io/warn=restricted |
    kc apply --server-side --field-manager=storefront-pod-security -f - >/dev/null
  # Server-side: the CRDs are too large for the last-applied annotation.
  cnpg_manifest "${mode}" | kc apply --server-side --force-conflicts -f - >/dev/null
  kc -n "${CNPG_NAMESPACE}" rollout status deployment/cnpg-controller-manager --timeout=180s >/dev/null
  kc wait --for=condition=Established crd/clusters.postgresql.cnpg.io crd/poolers.postgresql.cnpg.io --timeout=60s >/dev/null
  log "CloudNativePG ${CNPG_VERSION} is running in ${CNPG_NAMESPACE} (${mode} mode) after $(($(date +%s) - start))s"
}

# cnpg_helm_flags: what the chart needs beyond values-airgap.yaml in the
# cluster's mode. Air-gapped: nothing (values-airgap.yaml names our images).
# Internet: the published PostgreSQL $POSTGRES_MAJOR image, in the
# repository the operator's own default image comes from.
cnpg_helm_flags() {
  local repository
  [[ "$(cluster_mode)" != airgap ]] || return 0
  repository="$(sed -n 's/^[[:space:]]*DefaultImageName = "\(.*\):[^:"]*"$/\1/p' "$(cnpg_module_dir)/pkg/versions/versions.go")"
  [[ -n "${repository}" ]] || die "no DefaultImageName in ${CNPG_MODULE}/pkg/versions"
  printf -- '--set cloudnativepg.imageName=%s:%s\n' "${repository}" "${CNPG_PUBLISHED_POSTGRES_TAG}"
}
