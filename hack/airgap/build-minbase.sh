#!/usr/bin/env bash
# Build the Debian base image every other image starts FROM: a debootstrap
# minbase of $DEBIAN_SUITE, imported with `docker import` (no image can be
# pulled here). The Debian mirror is the one the machine's own apt sources
# use, read at run time, so no host name is written into the repository.
set -euo pipefail
# shellcheck source=hack/airgap/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_lock

if image_exists "${MINBASE_IMAGE}"; then
  log "${MINBASE_IMAGE}: present"
  exit 0
fi
[[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"

# mirror_for SUITE: the archive URI apt uses for SUITE/main on this machine.
# `apt-cache policy` lists every configured source whatever file format
# (one-line or deb822) declares it, e.g.
#   500 http://mirror.example/debian bookworm/main amd64 Packages
mirror_for() {
  apt-cache policy 2>/dev/null |
    awk -v s="$1/main" '$3 == s && $2 ~ /^(https?|file):/ { print $2; exit }'
}

MIRROR="$(mirror_for "${DEBIAN_SUITE}")"
[[ -n "${MIRROR}" ]] || die "no apt source for ${DEBIAN_SUITE}/main on this machine (apt-get update first?)"
UPDATES_MIRROR="$(mirror_for "${DEBIAN_SUITE}-updates")"
SECURITY_MIRROR="$(mirror_for "${DEBIAN_SUITE}-security")"

mkdir -p "${AIRGAP_CACHE}/tmp"
ROOTFS="$(mktemp -d "${AIRGAP_CACHE}/tmp/minbase.XXXXXX")"
# The rootfs has device nodes and root-owned files: always remove it.
trap 'rm -rf "${ROOTFS}"' EXIT

log "debootstrap --variant=minbase ${DEBIAN_SUITE} from ${MIRROR}"
debootstrap --variant=minbase "${DEBIAN_SUITE}" "${ROOTFS}" "${MIRROR}" \
  >"${ROOTFS}.log" 2>&1 || { tail -n 30 "${ROOTFS}.log" >&2; rm -f "${ROOTFS}.log"; die "debootstrap failed"; }
rm -f "${ROOTFS}.log"

# Same sources as the host, so images get the point releases and security
# fixes the host gets.
{
  echo "deb ${MIRROR} ${DEBIAN_SUITE} main"
  [[ -z "${UPDATES_MIRROR}" ]] || echo "deb ${UPDATES_MIRROR} ${DEBIAN_SUITE}-updates main"
  [[ -z "${SECURITY_MIRROR}" ]] || echo "deb ${SECURITY_MIRROR} ${DEBIAN_SUITE}-security main"
} >"${ROOTFS}/etc/apt/sources.list"

# Keep images small the way Debian's own container images do: no
# recommends, no docs/man/locales from later installs, no apt caches.
cat >"${ROOTFS}/etc/apt/apt.conf.d/90airgap-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
cat >"${ROOTFS}/etc/dpkg/dpkg.cfg.d/90airgap-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
find "${ROOTFS}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "${ROOTFS}/usr/share/man/"* "${ROOTFS}/usr/share/info/"* \
  "${ROOTFS}/var/lib/apt/lists/"* "${ROOTFS}/var/cache/apt/"*.bin \
  "${ROOTFS}/var/cache/apt/archives/"*.deb "${ROOTFS}/var/log/"*.log

log "importing ${MINBASE_IMAGE}"
tar --numeric-owner -C "${ROOTFS}" -c . |
  "${DOCKER}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "${MINBASE_IMAGE}" >/dev/null
log "${MINBASE_IMAGE}: built"
