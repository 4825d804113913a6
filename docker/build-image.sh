#!/usr/bin/env bash
# Build the service image (`make image`): leaderboard:local from docker/Dockerfile.
#
# With podman, or docker when that is what the machine has. The Dockerfile's default base,
# the official python:3.11-slim-bookworm, is used whenever it can be pulled. When it cannot
# (no registry reachable) and podman and debootstrap are here, a local Debian bookworm base
# is made once from Debian's mirror (debootstrap, then `podman import`) and the image is
# built from it: same Dockerfile, BASE_IMAGE build argument.
#
# Environment: IMAGE (leaderboard:local), BASE_IMAGE (force a base), LOCAL_BASE (the local
# base's name), DEBIAN_MIRROR, CA_BUNDLE (handed to pip as a build secret, never stored).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-leaderboard:local}
OFFICIAL_BASE=python:3.11-slim-bookworm
LOCAL_BASE=${LOCAL_BASE:-localhost/leaderboard-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

log() { printf '== %s\n' "$*" >&2; }

engine() {
  if command -v podman >/dev/null 2>&1; then
    echo podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo docker
  else
    log "neither podman nor a running docker: install podman (apt-get install podman runc)"
    exit 1
  fi
}

# A minimal Debian bookworm root file system imported as an image (about 120 MB).
make_local_base() {
  if podman image exists "$LOCAL_BASE"; then
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    log "$OFFICIAL_BASE cannot be pulled and debootstrap is missing (apt-get install debootstrap)"
    exit 1
  }
  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  log "making the local base $LOCAL_BASE with debootstrap from $DEBIAN_MIRROR"
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >&2
  # What a container base does not need: the downloaded packages and the package lists.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$LOCAL_BASE" >&2
}

main() {
  local engine base
  engine=$(engine)
  base=${BASE_IMAGE:-}
  if [ -z "$base" ]; then
    if "$engine" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 \
      || "$engine" pull "$OFFICIAL_BASE" >/dev/null 2>&1; then
      base=$OFFICIAL_BASE
    elif [ "$engine" = podman ]; then
      log "$OFFICIAL_BASE cannot be pulled: building from a local Debian base"
      make_local_base
      base=$LOCAL_BASE
    else
      log "$OFFICIAL_BASE cannot be pulled; set BASE_IMAGE to a Debian bookworm image you have"
      exit 1
    fi
  fi

  local args=(build -f docker/Dockerfile -t "$IMAGE" --build-arg "BASE_IMAGE=$base")
  if [ -s "$CA_BUNDLE" ]; then
    args+=(--secret "id=pip-ca,src=$CA_BUNDLE")
  fi
  if [ "$engine" = podman ]; then
    # docker format: the OCI format has no HEALTHCHECK. chroot isolation and the host's
    # network: what works where containers cannot set their own limits (docs/containers.md).
    args+=(--format docker --isolation=chroot --network host)
  fi
  log "$engine build from $base"
  local started=$SECONDS
  "$engine" "${args[@]}" .
  log "built $IMAGE in $((SECONDS - started)) s; size: $("$engine" image inspect "$IMAGE" --format '{{.Size}}') bytes"
}

main "$@"
