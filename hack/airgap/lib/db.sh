# shellcheck shell=bash
# The PostgreSQL and Redis images the chart runs in air-gapped clusters, at
# the chart's default majors: PostgreSQL $POSTGRES_MAJOR and Redis
# $REDIS_MAJOR from Debian $DB_DEBIAN_SUITE's packages, tagged by major
# ($POSTGRES_IMAGE, $REDIS_IMAGE). They keep the official images'
# environment contract and run as any non-root UID (see the README).
#
# Command: airgap db-images [--load]

# db_image_build IMAGE DIR [docker build flags...]
db_image_build() {
  local image=$1 dir=$2
  shift 2
  if image_exists "${image}"; then
    log "${image}: present"
    return 0
  fi
  log "${image}: building"
  # The directory holds only the Dockerfile and the entrypoint: it is the
  # whole build context.
  docker_build "${image}" "${AIRGAP_DIR}/images/${dir}" "${DB_MINBASE_IMAGE}" "$@" ||
    die "docker build of ${image} failed"
}

db_images_build() {
  minbase_build "${DB_DEBIAN_SUITE}"
  db_image_build "${POSTGRES_IMAGE}" postgres --build-arg "PG_MAJOR=${POSTGRES_MAJOR}"
  db_image_build "${REDIS_IMAGE}" redis --build-arg "REDIS_MAJOR=${REDIS_MAJOR}"
}

db_image_names() { printf '%s\n' "${POSTGRES_IMAGE}" "${REDIS_IMAGE}"; }
