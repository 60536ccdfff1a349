#!/usr/bin/env bash
# Builds the pushgateway container image without any container registry: the root file
# system comes from Debian packages (debootstrap, from the Debian mirror apt is configured
# with), the image is assembled by buildah from scratch. Run as root (debootstrap and
# buildah need it), from anywhere:
#
#   deploy/image/build.sh [options] [BINARY]
#
#   BINARY           the server binary to put in the image (default: target/release/pushgateway
#                    of this repository). It must be built on Debian 12 (bookworm) or older:
#                    it links glibc, libstdc++ and libgcc from the image.
#   --tag TAG        image name localhost/pushgateway:TAG (default: the version in Cargo.toml,
#                    the tag the Kubernetes manifests name)
#   --export FILE    also write the image to FILE as a docker-archive tar, for
#                    `podman load`/`docker load`, `kind load image-archive`, `ctr images import`
#   --oci            with --export: write an oci-archive instead (drops the HEALTHCHECK,
#                    which only the Docker image format carries)
#   --mirror URL     Debian mirror (default: the first bookworm one in apt's sources)
#   --cache DIR      where the pristine debootstrap tree is kept between runs (default
#                    $PUSHGATEWAY_IMAGE_CACHE or /var/cache/pushgateway-image); delete it
#                    to debootstrap afresh
#
# Packages needed on the build machine: debootstrap buildah (apt-get install -y debootstrap
# buildah). Re-running is safe: debootstrap runs once per cache directory, the rest of the
# file system is rebuilt from that copy each time, the tag is replaced.
#
# The image: Debian 12 minbase without apt caches, documentation, man pages and locales;
# ca-certificates; user and group nonroot (65532, as in distroless); /data owned by it; the
# binary at /usr/local/bin/pushgateway as the entrypoint; `--storage.path=/data` as the
# default command; ports 9091 (API) and 9092 (peers); a volume at /data; a health check
# that runs `pushgateway cluster status` against the node's own HTTP port.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
binary="$repo/target/release/pushgateway"
tag="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n 1)"
export_file=""
export_format=docker-archive
mirror=""
cache="${PUSHGATEWAY_IMAGE_CACHE:-/var/cache/pushgateway-image}"
suite=bookworm

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --export) export_file="$2"; shift 2 ;;
    --oci) export_format=oci-archive; shift ;;
    --mirror) mirror="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) binary="$1"; shift ;;
  esac
done

log() { printf '==> %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap and buildah need it)" >&2; exit 1; }
[ -x "$binary" ] || { echo "no executable binary at $binary" >&2; exit 1; }
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y $tool" >&2; exit 1; }
done

# The mirror apt already uses: one-line sources ("deb URL SUITE ...") or deb822 stanzas
# ("URIs:" with "Suites:"); the first whose suites include bookworm itself.
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # "deb [options] URL SUITE COMPONENTS...": the URL is the first field after the options.
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; ok = 0; deb = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
          if ($i ~ /^Suites:/) { n = split($i, a, " "); for (j = 2; j <= n; j++) if (a[j] == s) ok = 1 }
          if ($i ~ /^Types:/ && $i !~ /[ \t]deb([ \t]|$)/) deb = 0
          if ($i ~ /^Enabled: *no/) deb = 0
        }
        if (ok && deb && uri != "") { print uri; exit } }' "$f"
  done
}
if [ -z "$mirror" ]; then
  mirror="$(find_mirror | head -n1)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

# 1. The pristine Debian tree, once per cache directory.
base="$cache/$suite-minbase"
if [ ! -f "$base/.complete" ]; then
  log "debootstrap $suite from $mirror into $base"
  rm -rf "$base"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$base" "$mirror"
  touch "$base/.complete"
else
  log "reusing $base (delete it to debootstrap again)"
fi

# 2. A copy of it, stripped and given the user, the data directory and the binary.
rootfs="$cache/rootfs"
log "preparing $rootfs"
rm -rf "$rootfs"
cp -a "$base" "$rootfs"
rm -f "$rootfs/.complete"
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/usr/share/common-licenses \
  "$rootfs"/var/lib/dpkg/*-old
# Keep dpkg from reinstalling what was removed, should someone use apt in a derived image.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
  'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' >"$rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc"
# No host names or resolver of the build machine: the engine provides them.
: >"$rootfs/etc/hostname"
rm -f "$rootfs/etc/resolv.conf"
grep -q '^nonroot:' "$rootfs/etc/group" || echo 'nonroot:x:65532:' >>"$rootfs/etc/group"
grep -q '^nonroot:' "$rootfs/etc/passwd" ||
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin' >>"$rootfs/etc/passwd"
grep -q '^nonroot:' "$rootfs/etc/shadow" || echo 'nonroot:!:19000::::::' >>"$rootfs/etc/shadow"
install -d -o 65532 -g 65532 -m 0750 "$rootfs/home/nonroot"
install -d -o 65532 -g 65532 -m 0750 "$rootfs/data"
install -m 0755 "$binary" "$rootfs/usr/local/bin/pushgateway"
# Also as /bin/pushgateway, its path in the Dockerfile's image.
ln -sf ../local/bin/pushgateway "$rootfs/usr/bin/pushgateway"
# The binary's shared libraries must all be in the tree.
if chroot "$rootfs" /usr/bin/ldd /usr/local/bin/pushgateway 2>&1 | grep -q 'not found'; then
  chroot "$rootfs" /usr/bin/ldd /usr/local/bin/pushgateway >&2
  echo "the binary needs libraries the image lacks" >&2
  exit 1
fi
chroot "$rootfs" /usr/local/bin/pushgateway --version >/dev/null

# 3. The image, from scratch.
image="localhost/pushgateway:$tag"
work="pushgateway-image-build"
# The Docker image format: the OCI format has no field for the health check.
export BUILDAH_FORMAT=docker
buildah rm "$work" >/dev/null 2>&1 || true
log "buildah: $image"
buildah from --name "$work" scratch >/dev/null
trap 'buildah rm "$work" >/dev/null 2>&1 || true' EXIT
# A tar stream keeps ownership and modes exactly as in the tree.
mnt="$(buildah mount "$work")"
tar -C "$rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
buildah umount "$work" >/dev/null
rm -rf "$rootfs"
buildah config \
  --user 65532:65532 \
  --workingdir /home/nonroot \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --entrypoint '["/usr/local/bin/pushgateway"]' \
  --cmd '["--storage.path=/data"]' \
  --port 9091 --port 9092 \
  --volume /data \
  --healthcheck 'CMD /usr/local/bin/pushgateway cluster status --server http://127.0.0.1:9091' \
  --healthcheck-interval 10s --healthcheck-timeout 5s --healthcheck-start-period 30s --healthcheck-retries 3 \
  --label org.opencontainers.image.title=pushgateway \
  --label org.opencontainers.image.description="Clustered, replicated Prometheus Pushgateway" \
  --stop-signal SIGTERM \
  "$work"
previous="$(buildah images --quiet --no-trunc "$image" 2>/dev/null || true)"
buildah commit --quiet --format docker --rm "$work" "$image" >/dev/null
trap - EXIT
# The image this tag named before, now untagged: dropped unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(buildah images --quiet --no-trunc "$image")" ]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi
log "built $image"

if [ -n "$export_file" ]; then
  rm -f "$export_file"
  buildah push --quiet "$image" "$export_format:$export_file:$image"
  log "wrote $export_file ($export_format)"
fi
