#!/usr/bin/env bash
# Make this machine a container host for the Molecule scenarios, idempotently:
#   1. Docker engine installed (Debian's docker.io) and answering;
#   2. systemd base images built from Debian's packages (no image registry needed).
# Each step checks first and returns quickly when already done.
#   3. controller tools the tests use (real MQTT clients, openssl).
# Usage: scripts/container-host.sh [engine|images|tools|all]   (default: all)
set -euo pipefail

IMAGE_REPO="${IOTHUB_IMAGE_REPO:-iothub-emq/debian-systemd}"
# suite:tag pairs; Debian 12 is the main platform, Debian 13 the second one.
SUITES="${IOTHUB_IMAGE_SUITES:-bookworm:12 trixie:13}"
IMAGE_PACKAGES="python3,systemd,systemd-sysv,iproute2,procps,sudo,ca-certificates,dbus,iputils-ping"
LOG_DIR="${IOTHUB_LOG_DIR:-/var/log}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "setting up the container host needs root (apt-get, dockerd). Re-run as root, or start dockerd and build the images yourself (see README 'Container host')."
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: this script installs Docker from Debian's packages. On another OS, install a Docker engine and mmdebstrap by hand, then re-run."
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed; check the machine's package sources"
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

docker_answers() { docker info >/dev/null 2>&1; }

ensure_engine() {
  if docker_answers; then
    say "Docker engine answers"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  # docker.io brings iptables/containerd; make sure the client is there too.
  command -v docker >/dev/null 2>&1 || die "docker client missing after installing docker.io"
  if ! docker_answers; then
    need_root
    if pgrep -x dockerd >/dev/null 2>&1; then
      say "dockerd is starting; waiting for it"
    elif [ -d /run/systemd/system ] && systemctl start docker >/dev/null 2>&1; then
      say "started docker.service"
    else
      say "starting dockerd (log: $LOG_DIR/dockerd.log)"
      setsid dockerd >"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
    fi
    for _ in $(seq 1 60); do
      docker_answers && break
      sleep 1
    done
    docker_answers || die "dockerd did not answer within 60 s; see $LOG_DIR/dockerd.log"
  fi
  say "Docker engine answers"
}

ensure_images() {
  docker_answers || die "Docker engine not answering; run '$0 engine' first"
  local pair suite tag image tmp
  for pair in $SUITES; do
    suite="${pair%%:*}"; tag="${pair##*:}"; image="$IMAGE_REPO:$tag"
    if docker image inspect "$image" >/dev/null 2>&1; then
      say "image $image present"
      continue
    fi
    command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
    tmp="$(mktemp -d /var/tmp/iothub-rootfs.XXXXXX)"
    say "building $image from Debian $suite packages (about 20 s)"
    if ! mmdebstrap --quiet --variant=apt --include="$IMAGE_PACKAGES" \
        "$suite" "$tmp/rootfs.tar" >"$tmp/mmdebstrap.log" 2>&1; then
      cat "$tmp/mmdebstrap.log" >&2
      rm -rf "$tmp"
      die "mmdebstrap $suite failed"
    fi
    docker import --change 'CMD ["/lib/systemd/systemd"]' \
      --change 'ENV container=docker' \
      "$tmp/rootfs.tar" "$image" >/dev/null
    rm -rf "$tmp"
    say "image $image built"
  done
}

# Controller-side programs the tests drive: mosquitto_pub/mosquitto_sub (real MQTT clients),
# openssl (test certificates), dpkg-deb (builds the stand-in package).
TOOLS="${IOTHUB_HOST_TOOLS:-mosquitto-clients openssl dpkg git}"
ensure_tools() {
  # shellcheck disable=SC2086
  apt_install $TOOLS
  say "controller tools present ($TOOLS)"
}

case "${1:-all}" in
  engine) ensure_engine ;;
  images) ensure_images ;;
  tools) ensure_tools ;;
  all) ensure_engine; ensure_images; ensure_tools ;;
  *) die "usage: $0 [engine|images|tools|all]" ;;
esac
