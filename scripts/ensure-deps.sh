#!/usr/bin/env bash
# Installs what pagestorm needs on a Debian/Ubuntu machine that has only the
# Swift toolchain:
#   - libnuma-dev (pkg-config name "numa"): needed to build;
#   - libsqlite3-dev (sqlite3.h, libsqlite3.so): needed to build (the results
#     history, pagestorm record/history, uses the system SQLite);
#   - the peer allocators measured side by side (`--allocator`, `bench --peers`),
#     loaded with dlopen at run time: libjemalloc2 (libjemalloc.so.2),
#     libmimalloc2.0 (libmimalloc.so.2), libtcmalloc-minimal4 (libtcmalloc_minimal.so.4).
# Fast when everything is there (no apt-get at all). As root it installs what is
# missing with apt-get (apt-get update first: CI machines have stale lists);
# otherwise it prints the exact command. A missing libnuma stops the build
# (exit 1); missing peers only print a line (pagestorm runs without them, and
# says which package to install when one is asked for).
set -euo pipefail

libdirs="/usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /lib/aarch64-linux-gnu"
# --valgrind: also make sure valgrind is installed (make check-baselines counts
# instructions with callgrind), then go on with the libnuma check.
if [ "${1:-}" = "--valgrind" ] && ! command -v valgrind >/dev/null 2>&1; then
    vcmd="apt-get update && apt-get install -y --no-install-recommends valgrind"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "pagestorm's check-baselines needs valgrind, which is not installed. Run as root: sudo sh -c '$vcmd'" >&2
        exit 1
    fi
    echo "pagestorm: installing valgrind ($vcmd)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    command -v valgrind >/dev/null 2>&1 || { echo "the valgrind install did not provide valgrind" >&2; exit 1; }
fi

have_numa() {
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists numa 2>/dev/null; then return 0; fi
    [ -f /usr/include/numa.h ] && { [ -e /usr/lib/x86_64-linux-gnu/libnuma.so ] || [ -e /usr/lib/aarch64-linux-gnu/libnuma.so ] || ls /usr/lib*/libnuma.so >/dev/null 2>&1; }
}

have_sqlite() {
    [ -f /usr/include/sqlite3.h ] || return 1
    [ -e /usr/lib/x86_64-linux-gnu/libsqlite3.so ] || [ -e /usr/lib/aarch64-linux-gnu/libsqlite3.so ] || ls /usr/lib*/libsqlite3.so >/dev/null 2>&1
}

have_lib() { # soname
    local d
    for d in $libdirs; do [ -e "$d/$1" ] && return 0; done
    return 1
}

# package:soname of each peer allocator.
peers="libjemalloc2:libjemalloc.so.2 libmimalloc2.0:libmimalloc.so.2 libtcmalloc-minimal4:libtcmalloc_minimal.so.4"

missing=()
have_numa || missing+=(libnuma-dev pkg-config)
have_sqlite || missing+=(libsqlite3-dev)
missing_peers=()
for p in $peers; do
    have_lib "${p#*:}" || missing_peers+=("${p%%:*}")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_peers[@]} -eq 0 ] && exit 0

all=("${missing[@]}" "${missing_peers[@]}")
cmd="apt-get update && apt-get install -y --no-install-recommends ${all[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    if [ ${#missing[@]} -gt 0 ]; then
        if command -v apt-get >/dev/null 2>&1; then
            echo "pagestorm needs ${missing[*]}, which is not installed. Run as root:" >&2
            echo "    sudo sh -c '$cmd'" >&2
        else
            echo "pagestorm needs libnuma (numa.h, libnuma.so) and SQLite 3 (sqlite3.h, libsqlite3.so), and this machine has no apt-get; install your distribution's libnuma and sqlite3 development packages." >&2
        fi
        exit 1
    fi
    echo "pagestorm: peer allocators not installed (${missing_peers[*]}); --allocator and bench --peers skip them. To install: sudo sh -c '$cmd'" >&2
    exit 0
fi
echo "pagestorm: installing ${all[*]} ($cmd)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${all[@]}" >/dev/null
have_numa || { echo "libnuma-dev install did not provide numa.h/libnuma.so" >&2; exit 1; }
have_sqlite || { echo "libsqlite3-dev install did not provide sqlite3.h/libsqlite3.so" >&2; exit 1; }
for p in $peers; do
    have_lib "${p#*:}" || { echo "pagestorm: ${p%%:*} installed but ${p#*:} not found" >&2; exit 1; }
done
