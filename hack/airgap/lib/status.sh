# shellcheck shell=bash
# `airgap status`: what is built and what is missing. Exit status 0 only if
# nothing must be built for an air-gapped cluster and the chart work: the
# tools, the node image (it carries every cluster image) and the PostgreSQL
# and Redis images. Intermediate artefacts are listed but not required.
# `airgap clean`: remove what the builds produced.

status_report() {
  local missing=0 t c b image k8s_bin
  row() { printf '  %-9s %-13s %-58s %s\n' "$1" "$2" "$3" "$4"; }
  check_path() { # check_path REQUIRED KIND NAME PATH
    if [[ -e "$4" ]]; then
      row ok "$2" "$3" "$(du -sh "$4" | cut -f1)"
    else
      row "$([[ $1 == 1 ]] && echo MISSING || echo absent)" "$2" "$3" "${4/#${AIRGAP_CACHE}/\$AIRGAP_CACHE}"
      [[ $1 == 0 ]] || missing=$((missing + 1))
    fi
  }
  check_image() { # check_image REQUIRED IMAGE
    local size
    if size="$("${DOCKER}" image inspect -f '{{.Size}}' "$2" 2>/dev/null)"; then
      row ok image "$2" "$((size / 1000000)) MB"
    else
      row "$([[ $1 == 1 ]] && echo MISSING || echo absent)" image "$2" ""
      [[ $1 == 0 ]] || missing=$((missing + 1))
    fi
  }

  echo "Air-gapped kind toolchain (cache: ${AIRGAP_CACHE})"
  echo "Required:"
  for t in "${ALL_TOOLS[@]}"; do check_path 1 tool "${t} $(tool_version "${t}")" "$(tool_path "${t}")"; done
  if "${DOCKER}" info >/dev/null 2>&1; then
    for image in "${AIRGAP_NODE_IMAGE}" "${POSTGRES_IMAGE}" "${REDIS_IMAGE}"; do check_image 1 "${image}"; done
  else
    row MISSING docker "engine" "docker info fails (hack/ensure-docker.sh starts it)"
    missing=$((missing + 1))
  fi

  echo "Intermediate (rebuilt only when the node image is rebuilt):"
  k8s_bin="$(k8s_bin_dir)"
  for b in "${K8S_ALL[@]}"; do check_path 0 binary "${b} ${KUBERNETES_VERSION}" "${k8s_bin}/${b}"; done
  for c in "${COMPONENTS[@]}" "${CNI_COMPONENTS[@]}"; do
    check_path 0 binary "${c} $(component_version "${c}")" "$(component_binary "${c}")"
  done
  if "${DOCKER}" info >/dev/null 2>&1; then
    check_image 0 "${MINBASE_IMAGE}"
    check_image 0 "${DB_MINBASE_IMAGE}"
    check_image 0 "${KIND_BASE_IMAGE}"
    while read -r image; do check_image 0 "${image}"; done < <(node_preload_images)
  fi

  echo "Disk:"
  [[ ! -d "${AIRGAP_CACHE}" ]] || row "" cache "${AIRGAP_CACHE}" "$(du -sh "${AIRGAP_CACHE}" | cut -f1)"
  if "${DOCKER}" info >/dev/null 2>&1; then
    row "" images "${IMAGE_REPO}/* and ${IMAGE_PREFIX}/* in the daemon" "$(our_images_disk_use)"
  fi

  echo "Cluster:"
  if cluster_exists; then
    row up cluster "${KIND_CLUSTER}" "mode $(cluster_mode), $(kc get nodes --no-headers 2>/dev/null | wc -l) nodes"
  else
    row down cluster "${KIND_CLUSTER}" ""
  fi

  if ((missing > 0)); then
    echo "${missing} required artefact(s) missing: run 'make airgap-build'"
    return 1
  fi
  echo "Everything needed for an air-gapped cluster is present."
}

# Our images share layers (the Debian minbases, the kind base), so add up
# their unique sizes plus the largest shared part once.
our_images_disk_use() {
  "${DOCKER}" system df -v 2>/dev/null | awk -v a="${IMAGE_REPO}/" -v b="${IMAGE_PREFIX}/" '
    function bytes(s,  n) {
      n = s + 0
      if (s ~ /kB$/) n *= 1e3; else if (s ~ /MB$/) n *= 1e6; else if (s ~ /GB$/) n *= 1e9
      return n
    }
    /^Images space usage/ { on = 1; next }
    /^$/ && seen { on = 0 }
    on && (index($1, a) == 1 || index($1, b) == 1) {
      seen = 1; u += bytes($(NF - 1)); s = bytes($(NF - 2)); if (s > m) m = s
    }
    END { printf "%.2f GB", (u + m) / 1e9 }'
}

# airgap_clean: every image under the "airgap/" and "storefront-airgap/"
# repositories (all versions), the cache directory, and the tools in bin/.
# Left alone: the Go module and build caches (shared with all Go work on the
# machine) and docker's build cache. Refuses while our cluster runs.
airgap_clean() {
  local images=() t
  if [[ -n "$("${DOCKER}" ps -aq --filter "label=io.x-k8s.kind.cluster=${KIND_CLUSTER}")" ]]; then
    die "cluster ${KIND_CLUSTER} is running: make kind-down first"
  fi
  mapfile -t images < <("${DOCKER}" images --format '{{.Repository}}:{{.Tag}}' |
    awk -v a="${IMAGE_REPO}/" -v b="${IMAGE_PREFIX}/" 'index($0, a) == 1 || index($0, b) == 1')
  if [[ ${#images[@]} -gt 0 ]]; then
    log "removing ${#images[@]} images"
    "${DOCKER}" rmi "${images[@]}" >/dev/null
  fi
  if [[ -d "${AIRGAP_CACHE}" ]]; then
    log "removing ${AIRGAP_CACHE} ($(du -sh "${AIRGAP_CACHE}" | cut -f1))"
    # The Go module cache marks files read-only; make sure everything can go.
    chmod -R u+w "${AIRGAP_CACHE}"
    rm -rf "${AIRGAP_CACHE}"
  fi
  for t in "${ALL_TOOLS[@]}"; do
    if [[ "${t}" == gateway-api-crds ]]; then
      rm -rf "${BIN_DIR}/crds/gateway-api"
      rmdir "${BIN_DIR}/crds" 2>/dev/null || true
    elif [[ -f "${BIN_DIR}/${t}" ]]; then
      rm -f "${BIN_DIR}/${t}"
      log "removed ${BIN_DIR}/${t}"
    fi
  done
  rmdir "${BIN_DIR}" 2>/dev/null || true
}
