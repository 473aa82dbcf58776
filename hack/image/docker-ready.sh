#!/usr/bin/env bash
# Make sure a Docker daemon answers. hack/ensure-docker.sh (installs
# docker.io, starts dockerd; idempotent) does it where the repository has it;
# otherwise only check, and say what is missing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=hack/lib/docker.sh
. "${repo}/hack/lib/docker.sh"

if [[ -f "${repo}/hack/ensure-docker.sh" ]]; then
  # Its messages go to stderr: stdout of make targets stays for their results.
  bash "${repo}/hack/ensure-docker.sh" >&2
fi
if ! "${DOCKER}" info >/dev/null 2>&1; then
  echo "docker: no daemon answers (${DOCKER} info failed); start dockerd first" >&2
  exit 1
fi
