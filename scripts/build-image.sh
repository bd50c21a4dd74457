#!/usr/bin/env bash
# Build the blueprint-operator image with podman where Docker Hub cannot be reached (with it, `docker build .` is
# the normal way). A Debian trixie root filesystem made by mmdebstrap from the Debian mirror stands in for
# node:20-bookworm-slim: Debian's nodejs 20, npm from the npm registry in /usr/local (as in the official image), the
# Node headers for native builds (no download of them at build time) and a `node` user with uid/gid 1000. The
# repo's Dockerfile is then built on it with `--build-arg NODE_IMAGE=<that base>`.
#
# Usage: scripts/build-image.sh [IMAGE]            IMAGE defaults to localhost/blueprint-operator:latest
# Environment (all optional):
#   BPO_BASE_IMAGE    the base to build or reuse (default localhost/node:20-trixie-slim)
#   BPO_REBUILD_BASE  1 = build the base even when it exists
#   DEBIAN_MIRROR     default http://deb.debian.org/debian
#   NPM_VERSION       default 10.8.2 (the npm that Node 20.19 ships)
#   BPO_BUILD_CA_FILE CA bundle that `npm ci` trusts during the build only (never copied into the image); default
#                     the host's /etc/ssl/certs/ca-certificates.crt, empty = the base image's own
# Needs root, mmdebstrap and podman: apt-get install -y mmdebstrap podman runc uidmap slirp4netns fuse-overlayfs
# Prints "base: N s" and "image: N s" (wall time of each step) on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-localhost/blueprint-operator:latest}
base=${BPO_BASE_IMAGE:-localhost/node:20-trixie-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
npm_version=${NPM_VERSION:-10.8.2}
ca=${BPO_BUILD_CA_FILE-/etc/ssl/certs/ca-certificates.crt}

for bin in mmdebstrap podman; do
  command -v "$bin" >/dev/null 2>&1 || { echo "build-image: $bin is missing (apt-get install -y mmdebstrap podman runc uidmap slirp4netns fuse-overlayfs)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: run as root (mmdebstrap and podman build of a root filesystem)" >&2; exit 1; }

# podman's default rlimits exceed what runc may set on some hosts (it then refuses to start): name them, capped by
# this shell's hard limits
cap() { local h; h=$(ulimit -H "$1"); if [ "$h" != unlimited ] && [ "$h" -lt "$2" ]; then echo "$h"; else echo "$2"; fi; }
nofile=$(cap -n 20000)
nproc=$(cap -u 32768)
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "${BPO_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
  t0=$(date +%s)
  (cd "$tmp" && npm pack --silent "npm@$npm_version" >/dev/null)
  npm_tgz=$(ls "$tmp"/npm-*.tgz)
  # minbase + only what Node needs; no docs, man pages or translations
  mmdebstrap --quiet --variant=minbase \
    --aptopt='APT::Install-Recommends "false"' \
    --include=nodejs,libnode-dev,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$npm_tgz' --no-same-owner -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='printf "nodedir=/usr\n" > "$1/usr/local/lib/node_modules/npm/npmrc"' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    trixie "$tmp/rootfs.tar" "$mirror"
  podman import --quiet --change 'CMD ["node"]' "$tmp/rootfs.tar" "$base" >/dev/null
  rm -f "$tmp/rootfs.tar"
  echo "base: $(( $(date +%s) - t0 )) s ($base, node $(podman run --rm "${ulimits[@]}" "$base" node --version))" >&2
fi

t0=$(date +%s)
mounts=()
[ -n "$ca" ] && mounts+=(--volume "$(readlink -f "$ca"):/etc/ssl/certs/ca-certificates.crt:ro")
# docker format: an OCI image config has no HEALTHCHECK (podman drops it with a warning)
podman build --format docker --network=host "${ulimits[@]}" "${mounts[@]}" --build-arg "NODE_IMAGE=$base" --tag "$image" .
echo "image: $(( $(date +%s) - t0 )) s ($image)" >&2
