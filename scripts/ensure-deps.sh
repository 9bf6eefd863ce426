#!/usr/bin/env bash
# Installs what pagestorm needs to build on a Debian/Ubuntu machine that has
# only the Swift toolchain: libnuma-dev (pkg-config name "numa").
# As root it installs with apt-get; otherwise it prints the exact command and stops.
set -euo pipefail

have_numa() {
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists numa 2>/dev/null; then return 0; fi
    [ -f /usr/include/numa.h ] && { [ -e /usr/lib/x86_64-linux-gnu/libnuma.so ] || [ -e /usr/lib/aarch64-linux-gnu/libnuma.so ] || ls /usr/lib*/libnuma.so >/dev/null 2>&1; }
}

if have_numa; then exit 0; fi

cmd="apt-get update && apt-get install -y --no-install-recommends libnuma-dev pkg-config"
if [ "$(id -u)" -ne 0 ]; then
    echo "pagestorm needs libnuma-dev, which is not installed. Run as root:" >&2
    echo "    sudo sh -c '$cmd'" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "pagestorm needs libnuma (numa.h, libnuma.so) and this machine has no apt-get; install your distribution's libnuma development package." >&2
    exit 1
fi
echo "pagestorm: installing libnuma-dev ($cmd)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libnuma-dev pkg-config >/dev/null
have_numa || { echo "libnuma-dev install did not provide numa.h/libnuma.so" >&2; exit 1; }
