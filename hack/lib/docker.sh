# shellcheck shell=bash
# The ONE place that decides which docker client the project runs.
#
#   . hack/lib/docker.sh       sets and exports DOCKER (scripts)
#   bash hack/lib/docker.sh    prints it (make: DOCKER ?= $(shell ...))
#
# A DOCKER already set in the environment wins. Otherwise the Debian client
# /usr/bin/docker: /usr/local/bin/docker, when present, is a newer client that
# cannot build with BuildKit without the buildx plugin, which cannot be
# installed here; the Debian one (docker.io 20.10) builds with
# DOCKER_BUILDKIT=1 on its own.
if [[ -z "${DOCKER:-}" ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  printf '%s\n' "${DOCKER}"
fi
