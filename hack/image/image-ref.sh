#!/usr/bin/env bash
# Print facts about the image the current tree builds, one per call:
#
#   image-ref.sh tag        <git short sha>             image inputs as committed
#                           <git short sha>-dirty-<h>   inputs changed: h hashes the change
#                           src-<h>                     no git: h hashes the inputs
#   image-ref.sh revision   full commit sha, with -dirty when the inputs changed
#   image-ref.sh created    the commit time (RFC 3339, UTC) or 1970-01-01T00:00:00Z
#
# Only the image's inputs count, so a change to tests or docs keeps the tag,
# and the same tree always gives the same tag (a rebuild is a cache hit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# What the build context can hold (.dockerignore) plus the build's own files.
IMAGE_INPUTS=(Dockerfile .dockerignore pyproject.toml uv.lock alembic.ini app migrations)

in_git() { git rev-parse --verify --quiet HEAD >/dev/null 2>&1; }

# Files git does not track but the build would send (ignored files excluded).
untracked() { git ls-files --others --exclude-standard -z -- "${IMAGE_INPUTS[@]}"; }

dirty() {
  ! git diff --quiet HEAD -- "${IMAGE_INPUTS[@]}" ||
    [[ -n "$(git ls-files --others --exclude-standard -- "${IMAGE_INPUTS[@]}" | head -n 1)" ]]
}

change_hash() {
  {
    git diff --binary HEAD -- "${IMAGE_INPUTS[@]}"
    untracked | sort -z | while IFS= read -r -d '' f; do printf '%s\0' "${f}"; cat -- "${f}"; done
  } | sha256sum | cut -c1-12
}

content_hash() {
  find "${IMAGE_INPUTS[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 2>/dev/null |
    sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12
}

case "${1:-tag}" in
  tag)
    if ! in_git; then
      echo "src-$(content_hash)"
    elif dirty; then
      echo "$(git rev-parse --short=12 HEAD)-dirty-$(change_hash)"
    else
      git rev-parse --short=12 HEAD
    fi
    ;;
  revision)
    if ! in_git; then
      echo unknown
    elif dirty; then
      echo "$(git rev-parse HEAD)-dirty"
    else
      git rev-parse HEAD
    fi
    ;;
  created)
    if in_git; then
      TZ=UTC0 git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD
    else
      echo 1970-01-01T00:00:00Z
    fi
    ;;
  *)
    echo "usage: $0 tag|revision|created" >&2
    exit 2
    ;;
esac
