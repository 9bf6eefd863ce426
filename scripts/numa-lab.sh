#!/usr/bin/env bash
# numa-lab.sh: runs pagestorm inside a multi-node NUMA Linux guest (QEMU, TCG).
#
#   scripts/numa-lab.sh [--nodes 2|4|memonly] [--kernel default|backports|FILE] [--timeout S] [--bin PATH]
#                       [--sh 'COMMANDS' | --sh-file FILE...] [--] [PAGESTORM ARGS...]
#
# Examples:
#   scripts/numa-lab.sh -- zoneinfo
#   scripts/numa-lab.sh -- run Workloads/numa-machine.toml --no-overhead --no-results
#   scripts/numa-lab.sh --nodes 4 --sh 'pagestorm buddyinfo && pagestorm run Workloads/numa-machine.toml --no-results'
#   scripts/numa-lab.sh --kernel backports -- fault-pages --policy weighted-interleave=0:3,1:1 --pages 8192 --check
#
# --kernel: default = the kernel package the machine's linux-image-amd64
# depends on (Debian 12: 6.1); backports = the one of <codename>-backports
# (Debian 12: bookworm-backports, 6.12; needed for weighted interleave, Linux
# 6.9+), fetched through a private apt state under .numa-lab/apt-backports
# (its own sources list, package lists and cache; the machine's apt sources
# are not changed); FILE = a bzImage/vmlinuz to boot as it is. Only the
# kernel image is used (the guest loads no modules).
#
# As root on Debian it installs what it needs (qemu-system-x86, busybox-static,
# cpio, libnuma-dev), downloads one Debian kernel package, builds pagestorm in
# release with the Swift stdlib linked statically (or takes --bin PATH, e.g.
# .build/release/pagestorm, as it is: no second build; the Swift runtime
# libraries it links are packed too), packs an initramfs (busybox,
# the binary and the libraries ldd lists, Workloads/, an /init), boots it and
# runs the command in the guest (default: zoneinfo), in /lab, which holds a copy
# of Workloads/. Everything it downloads or builds goes to .numa-lab/
# (ignored by git). It prints the guest's output and exits with the guest
# command's exit code; 97 when the guest never reported one (boot failure or
# timeout). Idempotent: a second run reuses the packages, kernel and build.
#
# The guest: TCG (no KVM), -cpu max, 1 GiB split evenly over the nodes, one CPU
# per node. 2 nodes: distance 21. 4 nodes: two pairs, 21 inside a pair, 31
# between pairs. memonly: nodes 0 (cpu 0, 480 MiB), 1 (cpu 1, 480 MiB), 2
# (cpu 2, no memory) and 3 (memory only, 64 MiB); distances 0-1 21, 0-3 17,
# 1-3 31, node 2 21/21/31. With CPU 2 taken offline in the guest (as
# scripts/numa-lab-checks-memonly.sh does first), node 2 has neither CPUs nor
# memory: the machine has nodes 0, 1, 3, a gap at 2 and a memory-only node 3.
# `make test-numa-lab` (a CI step) runs scripts/numa-lab-checks.sh in the 2-node
# guest and scripts/numa-lab-checks-memonly.sh in the memonly guest (Debian 12's
# 6.1), then scripts/numa-lab-checks-weighted.sh in a memonly guest booted with
# --kernel backports (6.12), each with --bin .build/release/pagestorm.
set -euo pipefail

NODES=2
KERNEL_CHOICE=default
TIMEOUT=300
SHELL_CMD=""
ARGS=()
usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; }
BIN_GIVEN=""
die() { echo "numa-lab: error: $*" >&2; exit 97; }

while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) [ $# -ge 2 ] || die "--nodes needs a value"; NODES="$2"; shift 2 ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; TIMEOUT="$2"; shift 2 ;;
        --kernel) [ $# -ge 2 ] || die "--kernel needs default, backports or a kernel image file"; KERNEL_CHOICE="$2"; shift 2 ;;
        --sh) [ $# -ge 2 ] || die "--sh needs a command line"; SHELL_CMD="$2"; shift 2 ;;
        --sh-file) [ $# -ge 2 ] || die "--sh-file needs a file"; [ -r "$2" ] || die "--sh-file: cannot read '$2'"
            SHELL_CMD="${SHELL_CMD:+$SHELL_CMD
}$(cat "$2")"; shift 2 ;;   # given more than once: the files run as one script, in order
        --bin) [ $# -ge 2 ] || die "--bin needs a path"; BIN_GIVEN="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; ARGS=("$@"); break ;;
        *) ARGS=("$@"); break ;;
    esac
done
case "$NODES" in 2|4|memonly) ;; *) die "--nodes must be 2, 4 or memonly, got '$NODES'" ;; esac
case "$KERNEL_CHOICE" in
    default|backports) ;;
    *) [ -f "$KERNEL_CHOICE" ] && [ -r "$KERNEL_CHOICE" ] || die "--kernel must be default, backports or a readable kernel image file, got '$KERNEL_CHOICE'" ;;
esac
case "$TIMEOUT" in ''|*[!0-9]*) die "--timeout must be a number of seconds, got '$TIMEOUT'" ;; esac
if [ -n "$SHELL_CMD" ] && [ ${#ARGS[@]} -gt 0 ]; then die "give either --sh 'COMMANDS' or pagestorm arguments, not both"; fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LAB="$ROOT/.numa-lab"
mkdir -p "$LAB"
cd "$ROOT"
T0=$(date +%s)
say() { echo "numa-lab: $*" >&2; }

# 1. Host packages.
PKGS=(qemu-system-x86 busybox-static cpio libnuma-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}; run as root, or: sudo apt-get install -y --no-install-recommends ${PKGS[*]}"
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get (this script expects Debian)"
    say "installing ${PKGS[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update || die "apt-get update failed (no network?)"
    apt-get install -y --no-install-recommends "${PKGS[@]}" || die "apt-get install ${PKGS[*]} failed"
fi
NEED_TOOLS="qemu-system-x86_64 busybox cpio gzip ldd dpkg-deb timeout"
[ -n "$BIN_GIVEN" ] || NEED_TOOLS="$NEED_TOOLS swift"
for t in $NEED_TOOLS; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found"
done

# 2. One Debian kernel: the package linux-image-amd64 depends on, by its exact
#    name, from the machine's apt sources (default) or from <codename>-backports
#    through a private apt state (backports); or a kernel image file.
# fetch_kernel DIR APT_OPTIONS...: downloads that package into $LAB and extracts
# only boot/vmlinuz-* into DIR (skipped when DIR has one).
fetch_kernel() {
    local dir="$1"; shift
    ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 && return 0
    local kpkg
    kpkg=$(apt-cache "$@" depends linux-image-amd64 | awk '/Depends/ {print $2}' | grep '^linux-image-' | head -n 1)
    [ -n "$kpkg" ] || die "apt-cache depends linux-image-amd64 named no linux-image package (apt-get update first?)"
    if ! ls "$LAB/$kpkg"_*.deb >/dev/null 2>&1; then
        say "downloading $kpkg"
        (cd "$LAB" && apt-get "$@" download "$kpkg") || die "apt-get download $kpkg failed (no network?)"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    # Only the kernel image (the package's modules are not needed: the guest loads none).
    dpkg-deb --fsys-tarfile "$(ls "$LAB/$kpkg"_*.deb | head -n 1)" | tar -x -C "$dir" --wildcards './boot/vmlinuz-*' \
        || die "extracting boot/vmlinuz-* from $kpkg failed"
}
case "$KERNEL_CHOICE" in
    default)
        fetch_kernel "$LAB/k"
        KERNEL=$(ls "$LAB"/k/boot/vmlinuz-* | head -n 1) ;;
    backports)
        if ! ls "$LAB"/k-backports/boot/vmlinuz-* >/dev/null 2>&1; then
            CODENAME=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
            [ -n "$CODENAME" ] || die "--kernel backports: no VERSION_CODENAME in /etc/os-release (this script expects Debian)"
            A="$LAB/apt-backports"
            mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
            KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
            SIGNED=""; [ -r "$KEYRING" ] && SIGNED="[signed-by=$KEYRING] "
            echo "deb ${SIGNED}http://deb.debian.org/debian $CODENAME-backports main" >"$A/sources.list"
            # A private apt state: this sources list only, its own lists and cache
            # (the machine's /etc/apt/sources.list* and /var/lib/apt/lists are not touched).
            BP_OPTS=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=$A/none.d"
                -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o "APT::Sandbox::User=root")
            say "apt-get update of $CODENAME-backports (private lists under $A)"
            apt-get "${BP_OPTS[@]}" update >"$A/update.log" 2>&1 || { tail -n 5 "$A/update.log" >&2; die "apt-get update of $CODENAME-backports failed (no network?; log: $A/update.log)"; }
            fetch_kernel "$LAB/k-backports" "${BP_OPTS[@]}"
        fi
        KERNEL=$(ls "$LAB"/k-backports/boot/vmlinuz-* | head -n 1) ;;
    *) KERNEL="$KERNEL_CHOICE" ;;
esac
[ -r "$KERNEL" ] || die "no readable kernel image ($KERNEL)"

# 3. pagestorm: the one given (--bin), or a release build with the Swift stdlib linked in.
if [ -n "$BIN_GIVEN" ]; then
    BIN="$(cd "$(dirname "$BIN_GIVEN")" && pwd)/$(basename "$BIN_GIVEN")"
    [ -x "$BIN" ] || die "--bin: no executable at $BIN_GIVEN (make build makes .build/release/pagestorm)"
    ldd "$BIN" | grep -q "not found" && die "--bin: ldd cannot find every library of $BIN: $(ldd "$BIN" | grep 'not found' | tr -s ' ' | head -n 3)"
    say "using $BIN as it is (no build); packing the libraries ldd lists"
else
    say "building pagestorm (release, --static-swift-stdlib, scratch path .numa-lab/build)"
    swift build -c release --product pagestorm --static-swift-stdlib --scratch-path "$LAB/build" >"$LAB/build.log" 2>&1 \
        || { tail -n 30 "$LAB/build.log" >&2; die "swift build failed (log: $LAB/build.log)"; }
    BIN="$LAB/build/release/pagestorm"
    [ -x "$BIN" ] || die "no binary at $BIN"
fi

# 4. The initramfs: a base archive (rebuilt when the binary or Workloads/ change)
#    plus a small archive holding the command, concatenated (the kernel reads both).
BASE="$LAB/initrd-base.cpio.gz"
if [ ! -f "$BASE" ] || [ "$BIN" -nt "$BASE" ] || [ "$(cat "$BASE.bin" 2>/dev/null)" != "$BIN" ] || [ -n "$(find Workloads -newer "$BASE" 2>/dev/null | head -n 1)" ]; then
    say "packing the initramfs"
    R="$LAB/rootfs"
    rm -rf "$R"
    mkdir -p "$R"/{bin,proc,sys,tmp,dev,lab}
    mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true # the kernel's built-in initramfs has one too
    cp "$(command -v busybox)" "$R/bin/busybox"
    for l in sh mount poweroff cat ls mkdir sleep; do ln -s busybox "$R/bin/$l"; done
    cp "$BIN" "$R/bin/pagestorm"
    # Every library ldd lists, copied to the same path.
    for lib in $(ldd "$BIN" | grep -o '/[^ ]*'); do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
    cp -r Workloads "$R/lab/Workloads"
    cat >"$R/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
export PATH=/bin HOME=/lab
cd /lab
echo "numa-lab: guest up: nodes online $(cat /sys/devices/system/node/online), cpus online $(cat /sys/devices/system/cpu/online)"
sh /cmd.sh
rc=$?
echo "numa-lab: guest command exit code $rc"
poweroff -f
EOF
    chmod +x "$R/init"
    (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$BASE.tmp" && mv "$BASE.tmp" "$BASE"
    echo "$BIN" >"$BASE.bin"
fi
C="$LAB/cmd-root"
rm -rf "$C"; mkdir -p "$C"
if [ -n "$SHELL_CMD" ]; then
    printf '%s\n' "$SHELL_CMD" >"$C/cmd.sh"
else
    [ ${#ARGS[@]} -gt 0 ] || ARGS=(zoneinfo)
    { printf 'pagestorm'; printf " '%s'" "${ARGS[@]//\'/\'\\\'\'}"; printf '\n'; } >"$C/cmd.sh"
fi
(cd "$C" && echo cmd.sh | cpio -o -H newc --quiet | gzip -1) >"$LAB/initrd-cmd.cpio.gz"
cat "$BASE" "$LAB/initrd-cmd.cpio.gz" >"$LAB/initrd.gz"

# 5. Boot, bounded by timeout.
MEM_MIB=1024
if [ "$NODES" = memonly ]; then
    # Nodes 0 and 1: a CPU and 480 MiB each; node 2: CPU 2 and no memory;
    # node 3: 64 MiB and no CPU (memory-only). Linux numbers them 0-3 as QEMU
    # does (dense). scripts/numa-lab-checks-memonly.sh takes CPU 2 offline
    # first: node 2 then has neither CPUs nor memory, and the machine pagestorm
    # discovers has nodes 0, 1 and 3 (a gap at 2, node 3 memory-only).
    # (QEMU itself refuses ids with a gap: `-numa node,nodeid=0 ... -numa
    # node,nodeid=2` without nodeid=1 exits 1 with "numa: Node ID missing: 1";
    # and a QEMU node with neither CPUs nor memory is left out of the guest's
    # SRAT, so Linux renumbers the rest densely.)
    QARGS=(-accel tcg -cpu max -m "${MEM_MIB}M" -smp 3
        -object memory-backend-ram,id=m0,size=480M -numa node,nodeid=0,cpus=0,memdev=m0
        -object memory-backend-ram,id=m1,size=480M -numa node,nodeid=1,cpus=1,memdev=m1
        -numa node,nodeid=2,cpus=2
        -object memory-backend-ram,id=m3,size=64M -numa node,nodeid=3,memdev=m3
        -numa dist,src=0,dst=1,val=21 -numa dist,src=0,dst=2,val=21 -numa dist,src=0,dst=3,val=17
        -numa dist,src=1,dst=2,val=21 -numa dist,src=1,dst=3,val=31 -numa dist,src=2,dst=3,val=31)
else
    PER=$((MEM_MIB / NODES))
    QARGS=(-accel tcg -cpu max -m "${MEM_MIB}M" -smp "$NODES")
    for ((n = 0; n < NODES; n++)); do
        QARGS+=(-object "memory-backend-ram,id=m$n,size=${PER}M" -numa "node,nodeid=$n,cpus=$n,memdev=m$n")
    done
    for ((a = 0; a < NODES; a++)); do
        for ((b = a + 1; b < NODES; b++)); do
            d=21; [ $((a / 2)) -ne $((b / 2)) ] && d=31
            QARGS+=(-numa "dist,src=$a,dst=$b,val=$d")
        done
    done
fi
QARGS+=(-kernel "$KERNEL" -initrd "$LAB/initrd.gz" -append "console=ttyS0 quiet panic=-1" -nographic -no-reboot)
if [ "$(wc -l <"$C/cmd.sh")" -gt 1 ]; then what="a $(wc -l <"$C/cmd.sh")-line shell script"; else what="$(cat "$C/cmd.sh")"; fi
say "booting a $NODES-node guest ($(basename "$KERNEL"), TCG), command: $what, timeout ${TIMEOUT}s"
LOG="$LAB/guest.log"
T1=$(date +%s)
set +e
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${QARGS[@]}" </dev/null | tr -d '\r' | tee "$LOG"
qrc=${PIPESTATUS[0]}
set -e
T2=$(date +%s)
say "guest ran $((T2 - T1)) s (whole script $((T2 - T0)) s); log: $LOG"
[ "$qrc" -ne 124 ] && [ "$qrc" -ne 137 ] || die "the guest did not finish within ${TIMEOUT}s (qemu killed)"
rc=$(sed -n 's/^numa-lab: guest command exit code \([0-9][0-9]*\)$/\1/p' "$LOG" | tail -n 1)
[ -n "$rc" ] || die "the guest printed no exit code (qemu exit status $qrc): see $LOG"
exit "$rc"
