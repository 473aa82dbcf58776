#!/usr/bin/env bash
# Build a local Python base image from Debian packages, for machines that can
# neither find nor pull the official python image (no registry reachable).
#
#   debootstrap --variant=minbase <suite> + python3, python3-venv,
#   ca-certificates, tzdata; then the suite's -updates and -security fixes;
#   then `tar | docker import`.
#
# Python lives in /usr/bin here (the official image has it in /usr/local/bin);
# the Dockerfile uses `python3` from PATH and the same base for both stages, so
# either works. The Debian mirror is the one the machine's own apt sources
# name, read at run time: no host name is written into the repository.
#
# Cached by tag: an existing image built from this same recipe is kept.
# BASE_REBUILD=1 forces a rebuild.
#
# Environment: BASE_LOCAL_IMAGE (tag to build), DEBIAN_SUITE, DOCKER, BASE_REBUILD.
set -euo pipefail

BASE_LOCAL_IMAGE="${BASE_LOCAL_IMAGE:-storefront-base/python:3.11-bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
PACKAGES="python3,python3-venv,ca-certificates,tzdata"
if [[ -z "${DOCKER:-}" ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

log() { printf '[base-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The recipe is this script plus its inputs: a change to any of them makes the
# cached image stale.
recipe="$(
  { cat "${BASH_SOURCE[0]}"; echo "${DEBIAN_SUITE} ${PACKAGES}"; } | sha256sum | cut -c1-16
)"
recipe_label="org.storefront.base.recipe"

if [[ "${BASE_REBUILD:-0}" != 1 ]] &&
  have="$("${DOCKER}" image inspect --format "{{ index .Config.Labels \"${recipe_label}\" }}" "${BASE_LOCAL_IMAGE}" 2>/dev/null)"; then
  if [[ "${have}" == "${recipe}" ]]; then
    log "${BASE_LOCAL_IMAGE}: present (recipe ${recipe})"
    exit 0
  fi
  log "${BASE_LOCAL_IMAGE}: built from another recipe (${have:-none}), rebuilding"
fi

[[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# mirror_for SUITE: the first URI that the machine's apt sources give for
# SUITE with component main. Reads deb822 files (*.sources) and one-line
# lists (sources.list, *.list); disabled entries are skipped.
mirror_for() {
  local suite="$1" files=()
  shopt -s nullglob
  files=(/etc/apt/sources.list.d/*.sources)
  local lists=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [[ -f "${f}" ]] && lists+=("${f}"); done
  shopt -u nullglob
  local uri=""
  if ((${#files[@]})); then
    uri="$(awk -v want="${suite}" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " want " ") &&
            (" " comps " ") ~ / main / && uris != "" && !found) {
          split(uris, u, " "); print u[1]; found = 1
        }
        types = uris = suites = comps = ""; enabled = "yes"; field = ""
      }
      BEGIN { enabled = "yes" }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]/ {  # continuation of a multi-line field
        line = $0; sub(/^[[:space:]]+/, "", line)
        if (field == "uris") uris = uris " " line
        else if (field == "suites") suites = suites " " line
        else if (field == "components") comps = comps " " line
        next
      }
      {
        name = tolower($0); sub(/:.*/, "", name)
        value = $0; sub(/^[^:]*:[[:space:]]*/, "", value); gsub(/[[:space:]]+/, " ", value)
        field = name
        if (name == "types") types = value
        else if (name == "uris") uris = value
        else if (name == "suites") suites = value
        else if (name == "components") comps = value
        else if (name == "enabled") enabled = tolower(value)
      }
      END { flush() }
    ' "${files[@]}")"
  fi
  if [[ -z "${uri}" ]] && ((${#lists[@]})); then
    uri="$(awk -v want="${suite}" '
      /^[[:space:]]*#/ { next }
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }  # [ options ]
        if ($(i + 1) != want) next
        for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
      }
    ' "${lists[@]}")"
  fi
  printf '%s' "${uri}"
}

MIRROR="$(mirror_for "${DEBIAN_SUITE}")"
[[ -n "${MIRROR}" ]] || die "no apt source for ${DEBIAN_SUITE}/main in /etc/apt/sources.list{,.d/*}"
UPDATES_MIRROR="$(mirror_for "${DEBIAN_SUITE}-updates")"
SECURITY_MIRROR="$(mirror_for "${DEBIAN_SUITE}-security")"

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/storefront-base.XXXXXX")"
cleanup() {
  # The rootfs holds device nodes and root-owned files; /proc may be mounted.
  if mountpoint -q "${ROOTFS}/proc" 2>/dev/null; then umount "${ROOTFS}/proc" || umount -l "${ROOTFS}/proc"; fi
  rm -rf "${ROOTFS}" "${ROOTFS}.log"
}
trap cleanup EXIT

log "debootstrap --variant=minbase ${DEBIAN_SUITE} (+ ${PACKAGES}) from the machine's mirror"
debootstrap --variant=minbase --components=main --include="${PACKAGES}" \
  "${DEBIAN_SUITE}" "${ROOTFS}" "${MIRROR}" >"${ROOTFS}.log" 2>&1 ||
  { tail -n 40 "${ROOTFS}.log" >&2; die "debootstrap failed"; }

# Keep the image small the way Debian's own container images do: no
# recommends, no docs, man pages or translations from this point on.
cat >"${ROOTFS}/etc/apt/apt.conf.d/90storefront-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
cat >"${ROOTFS}/etc/dpkg/dpkg.cfg.d/90storefront-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

# The same sources as the host, then the point-release and security fixes
# that debootstrap (main suite only) does not bring.
{
  echo "deb ${MIRROR} ${DEBIAN_SUITE} main"
  [[ -z "${UPDATES_MIRROR}" ]] || echo "deb ${UPDATES_MIRROR} ${DEBIAN_SUITE}-updates main"
  [[ -z "${SECURITY_MIRROR}" ]] || echo "deb ${SECURITY_MIRROR} ${DEBIAN_SUITE}-security main"
} >"${ROOTFS}/etc/apt/sources.list"
cp /etc/resolv.conf "${ROOTFS}/etc/resolv.conf"
mount -t proc proc "${ROOTFS}/proc"
log "applying ${DEBIAN_SUITE}-updates and -security"
{
  chroot "${ROOTFS}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive chroot "${ROOTFS}" apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade &&
    chroot "${ROOTFS}" apt-get clean
} >"${ROOTFS}.log" 2>&1 || { tail -n 40 "${ROOTFS}.log" >&2; die "apt-get upgrade in the rootfs failed"; }
umount "${ROOTFS}/proc"

python_version="$(chroot "${ROOTFS}" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

find "${ROOTFS}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find "${ROOTFS}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "${ROOTFS}/usr/share/man/"* "${ROOTFS}/usr/share/info/"* \
  "${ROOTFS}/var/lib/apt/lists/"* "${ROOTFS}/var/cache/apt/"* \
  "${ROOTFS}/var/cache/debconf/"*-old "${ROOTFS}/var/lib/dpkg/"*-old \
  "${ROOTFS}/var/log/"* "${ROOTFS}/tmp/"* "${ROOTFS}/root/.cache"
# Docker provides these at run time.
: >"${ROOTFS}/etc/resolv.conf"
: >"${ROOTFS}/etc/hostname"

log "importing ${BASE_LOCAL_IMAGE} (Python ${python_version})"
tar --numeric-owner -C "${ROOTFS}" -c . |
  "${DOCKER}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL ${recipe_label}=${recipe}" \
    --change "LABEL org.opencontainers.image.title=python-${DEBIAN_SUITE}" \
    --change "LABEL org.opencontainers.image.description=\"Debian ${DEBIAN_SUITE} minbase with its python3 ${python_version}\"" \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase ${DEBIAN_SUITE} + ${PACKAGES}" \
    - "${BASE_LOCAL_IMAGE}" >/dev/null
log "${BASE_LOCAL_IMAGE}: built ($("${DOCKER}" image inspect --format '{{.Size}}' "${BASE_LOCAL_IMAGE}" | numfmt --to=si)B)"
