# shellcheck shell=bash
# Debian root filesystems for images built without a registry: debootstrap a
# minbase, bring it to the point release and security fixes the host has,
# slim it the way Debian's own container images are, and `docker import` it.
# Sourced by hack/airgap/lib/images.sh and hack/image/build-base.sh, after
# hack/lib/docker.sh (DOCKER).
#
# The mirror is the one the machine's own apt sources use, read at run time:
# no host name is written into the repository.

# debian_mirror SUITE: the archive URI apt uses for SUITE/main here.
# `apt-cache policy` lists every configured source, whatever file format
# (one-line or deb822) declares it, e.g.
#   500 http://mirror.example/debian bookworm/main amd64 Packages
# A suite the machine does not use itself (trixie on a bookworm host) is
# served by the same archive: take the URI of a configured suite of the same
# kind (plain, -updates or -security).
debian_mirror() {
  local kind=""
  case "$1" in
    *-updates) kind=-updates ;;
    *-security) kind=-security ;;
  esac
  apt-cache policy 2>/dev/null | awk -v s="$1/main" -v k="${kind}" '
    $2 !~ /^(https?|file):/ { next }
    $3 == s { exact = $2 }
    $3 ~ ("^[a-z]+" k "/main$") && !same { same = $2 }
    END { if (exact != "") print exact; else if (same != "") print same }'
}

# debian_rootfs ROOTFS SUITE [PACKAGES]: a slim, up-to-date minbase in ROOTFS
# (an empty directory), with PACKAGES (comma-separated) installed.
debian_rootfs() {
  local rootfs="$1" suite="$2" packages="${3:-}" mirror updates security
  [[ "$(id -u)" == 0 ]] || { echo "debootstrap needs root" >&2; return 1; }
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends debootstrap >/dev/null
  fi
  mirror="$(debian_mirror "${suite}")"
  if [[ -z "${mirror}" ]]; then
    # A fresh machine may have empty apt lists: apt-cache knows no source yet.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    mirror="$(debian_mirror "${suite}")"
  fi
  [[ -n "${mirror}" ]] || { echo "no apt source for ${suite}/main on this machine" >&2; return 1; }
  updates="$(debian_mirror "${suite}-updates")"
  security="$(debian_mirror "${suite}-security")"

  debootstrap --variant=minbase --components=main ${packages:+--include="${packages}"} \
    "${suite}" "${rootfs}" "${mirror}" >"${rootfs}.log" 2>&1 ||
    { tail -n 40 "${rootfs}.log" >&2; rm -f "${rootfs}.log"; return 1; }

  # Keep images small the way Debian's own container images do: no
  # recommends, no docs, man pages or translations from later installs.
  cat >"${rootfs}/etc/apt/apt.conf.d/90storefront-slim" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
CONF
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/90storefront-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CONF

  # The host's sources, then the point-release and security fixes that
  # debootstrap (main suite only) does not bring.
  {
    echo "deb ${mirror} ${suite} main"
    [[ -z "${updates}" ]] || echo "deb ${updates} ${suite}-updates main"
    [[ -z "${security}" ]] || echo "deb ${security} ${suite}-security main"
  } >"${rootfs}/etc/apt/sources.list"
  cp /etc/resolv.conf "${rootfs}/etc/resolv.conf"
  mount -t proc proc "${rootfs}/proc"
  local status=0
  {
    chroot "${rootfs}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive chroot "${rootfs}" apt-get -y -qq \
        -o Dpkg::Options::=--force-confold dist-upgrade &&
      chroot "${rootfs}" apt-get clean
  } >"${rootfs}.log" 2>&1 || status=$?
  umount "${rootfs}/proc"
  if ((status)); then tail -n 40 "${rootfs}.log" >&2; rm -f "${rootfs}.log"; return "${status}"; fi
  rm -f "${rootfs}.log"

  find "${rootfs}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "${rootfs}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "${rootfs}/usr/share/man/"* "${rootfs}/usr/share/info/"* \
    "${rootfs}/var/lib/apt/lists/"* "${rootfs}/var/cache/apt/"* \
    "${rootfs}/var/cache/debconf/"*-old "${rootfs}/var/lib/dpkg/"*-old \
    "${rootfs}/var/log/"* "${rootfs}/tmp/"* "${rootfs}/root/.cache"
  # Docker provides these at run time.
  : >"${rootfs}/etc/resolv.conf"
  : >"${rootfs}/etc/hostname"
}

# debian_rootfs_cleanup ROOTFS: for an EXIT trap (device nodes, root-owned
# files, possibly /proc still mounted after a failure).
debian_rootfs_cleanup() {
  if mountpoint -q "$1/proc" 2>/dev/null; then umount "$1/proc" || umount -l "$1/proc"; fi
  rm -rf "$1" "$1.log"
}

# debian_import ROOTFS IMAGE [--change ...]...: `tar | docker import`.
debian_import() {
  local rootfs="$1" image="$2"
  shift 2
  tar --numeric-owner -C "${rootfs}" -c . |
    "${DOCKER:?hack/lib/docker.sh sets DOCKER}" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$@" - "${image}" >/dev/null
}
