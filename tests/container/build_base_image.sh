#!/usr/bin/env bash
# Build a local stand-in for docker.io/library/python:3.11-slim, so that the container test
# builds the baked Dockerfile without pulling from a registry (this machine reaches only
# PyPI, apt and npm). The image is Debian bookworm (minbase) with Debian's own python3.11,
# made with debootstrap and imported with `podman import`. It is cached: if the image
# exists, nothing happens.
#
# Usage: tests/container/build_base_image.sh [PYTHON_VERSION]   (only 3.11: bookworm's python)
# Env:   DEBIAN_MIRROR (default: the first deb.debian.org-style URI of the host's apt sources)
#        HOST_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt; copied into the image so
#        that pip and uv trust a TLS-intercepting proxy the host trusts)
set -euo pipefail

python_version="${1:-3.11}"
image="docker.io/library/python:${python_version}-slim"
ca_bundle="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if [[ "$python_version" != "3.11" ]]; then
    echo "only python 3.11 is supported (Debian bookworm's python3), not $python_version" >&2
    exit 2
fi
if podman image exists "$image"; then
    echo "$image exists; nothing to do"
    exit 0
fi
if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
    DEBIAN_MIRROR="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | head -n1 | tr -d ' ' || true)"
    DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fi

rootfs="$(mktemp -d /var/tmp/python-slim-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

start=$(date +%s)
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$DEBIAN_MIRROR"
echo "debootstrap took $(($(date +%s) - start)) s"

# What python:X-slim offers: `python` and `pip` on PATH, pip allowed to install into the system
# interpreter (Debian marks it externally managed, the official image does not).
ln -sf python3 "$rootfs/usr/bin/python"
ln -sf pip3 "$rootfs/usr/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
# The host's trust store (it may include an intercepting proxy's CA), for pip and uv.
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$rootfs/etc/pip.conf"
# Keep it small: no apt lists or caches, no docs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

tar --numeric-owner -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "$image"
echo "built $image in $(($(date +%s) - start)) s; size $(podman image inspect --format '{{.Size}}' "$image") bytes"
