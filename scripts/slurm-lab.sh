#!/usr/bin/env bash
# slurm-lab.sh: a real single-node Slurm cluster (Debian's slurmctld, slurmd,
# munge) on this machine, for sharded sweeps; and the CI test that uses it.
#
#   scripts/slurm-lab.sh install   # apt-get the packages (as root; apt-get update first)
#   scripts/slurm-lab.sh start     # munged, slurmctld, slurmd; waits until the node is idle
#   scripts/slurm-lab.sh check     # sinfo, and `srun -n1 true` through the cluster
#   scripts/slurm-lab.sh stop      # cancel jobs, stop what start started, remove its files
#   scripts/slurm-lab.sh test      # install, start, the sweep test below, stop (even on failure)
#
# The test (`make test-slurm`, run by .ci/run): the sweep Workloads/sweeps/ci-small.toml
# (4 points x 2 repetitions = 8 runs) is submitted as `sbatch --array=0-3`; each
# task runs `pagestorm sweep` with no --shard (it reads SLURM_ARRAY_TASK_ID and
# SLURM_ARRAY_TASK_COUNT) into a folder of its own; `pagestorm merge` joins the
# 4 folders. The test checks every task COMPLETED with exit code 0, the merge
# found no missing or duplicate run, and the merged set of runs equals the
# unsharded sweep's (`pagestorm sweep --dry-run`). It also checks that
# `--emit slurm` prints a job array script bash can parse. It uses
# .build/release/pagestorm (`make build`), never builds.
#
# No systemd, no cgroups: the daemons run as root with proctrack/linuxproc.
# Everything it writes goes to .slurm-lab/ (ignored by git) and SLURM_CONF
# points there, so /etc/slurm is not touched. It adds a line to /etc/hosts
# only if the host name does not resolve, and removes it again. `stop` ends
# only the processes `start` started (by the pids it recorded).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LAB="$ROOT/.slurm-lab"
export SLURM_CONF="$LAB/slurm.conf"
HOST="$(hostname -s)"
say() { echo "slurm-lab: $*" >&2; }
die() { echo "slurm-lab: error: $*" >&2; exit 1; }
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons as root)"; }

# Waits up to $1 seconds (in 0.2 s steps) for the command "$2..." to succeed.
wait_for() {
    local limit=$1; shift
    local i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -le $((limit * 5)) ] || return 1
        sleep 0.2
    done
}

cmd_install() {
    need_root
    local pkgs=(slurmctld slurmd slurm-client munge) missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then say "packages already installed"; return 0; fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$1" ] && cat "$1" || true; }

cmd_start() {
    need_root
    command -v slurmctld >/dev/null && command -v munged >/dev/null || die "Slurm is not installed: run '$0 install' first"
    if [ -s "$LAB/slurmctld.pid" ] && alive "$(pid_of "$LAB/slurmctld.pid")"; then die "already started (run '$0 stop' first)"; fi
    rm -rf "$LAB"
    mkdir -p "$LAB/ctld" "$LAB/d" "$LAB/log"
    : > "$LAB/started"   # what this start did, one line each, for stop

    # The host name must resolve before munged starts.
    if ! getent hosts "$HOST" >/dev/null; then
        echo "127.0.0.1 $HOST  # slurm-lab" >> /etc/hosts
        echo "hosts" >> "$LAB/started"
    fi
    # munged: reuse one that runs already; otherwise start ours.
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running: using it"
    else
        if [ ! -d /run/munge ]; then
            install -d -o munge -g munge -m 0755 /run/munge
            echo "rundir" >> "$LAB/started"
        fi
        runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
        wait_for 10 sh -c 'munge -n | unmunge' || die "munged did not start"
        echo "munged $(cat /run/munge/munged.pid)" >> "$LAB/started"
    fi

    local node
    node="$(slurmd -C | head -1)"
    cat > "$SLURM_CONF" <<EOF
ClusterName=slurmlab
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$LAB/ctld
SlurmdSpoolDir=$LAB/d
SlurmctldPidFile=$LAB/slurmctld.pid
SlurmdPidFile=$LAB/slurmd.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
SchedulerParameters=batch_sched_delay=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
    wait_for 10 test -s "$LAB/slurmctld.pid" || die "slurmctld did not start (see $LAB/log/slurmctld.log)"
    echo "slurmctld $(cat "$LAB/slurmctld.pid")" >> "$LAB/started"
    wait_for 20 scontrol ping || die "slurmctld does not answer (see $LAB/log/slurmctld.log)"
    slurmd -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
    wait_for 10 test -s "$LAB/slurmd.pid" || die "slurmd did not start (see $LAB/log/slurmd.log)"
    echo "slurmd $(cat "$LAB/slurmd.pid")" >> "$LAB/started"
    wait_for 30 sh -c "sinfo -h -n '$HOST' -o %T | grep -qx idle" || die "the node is not idle: $(sinfo -h -n "$HOST" -o %T 2>&1) (see $LAB/log/)"
    say "cluster up: $(sinfo -h -o '%P %D %T %c CPUs')"
}

cmd_check() {
    [ -s "$SLURM_CONF" ] || die "not started"
    sinfo
    timeout 60 srun -n1 true || die "srun -n1 true failed"
    say "srun works"
}

cmd_stop() {
    [ -f "$LAB/started" ] || { say "nothing to stop"; return 0; }
    if [ -s "$LAB/slurmctld.pid" ] && alive "$(pid_of "$LAB/slurmctld.pid")"; then
        scancel --user=root 2>/dev/null || true
        wait_for 20 sh -c '[ -z "$(squeue -h 2>/dev/null)" ]' || say "jobs still listed after 20 s"
    fi
    # Stop the daemons this start started, newest first, by their recorded pids.
    local line what pid
    tac "$LAB/started" | while read -r what pid; do
        case "$what" in
            slurmd|slurmctld|munged)
                if alive "$pid"; then
                    kill -TERM "$pid" 2>/dev/null || true
                    wait_for 15 sh -c "! kill -0 $pid" || { say "$what ($pid) did not exit on TERM; KILL"; kill -KILL "$pid" 2>/dev/null || true; }
                fi ;;
            rundir) rm -rf /run/munge ;;
            hosts)
                # /etc/hosts may be a bind mount: rewrite it in place.
                local kept
                kept="$(grep -v "  # slurm-lab\$" /etc/hosts || true)"
                printf '%s\n' "$kept" > /etc/hosts ;;
        esac
    done
    rm -rf "$LAB"
    say "stopped"
}

cmd_test() {
    local bin="${PAGESTORM:-$ROOT/.build/release/pagestorm}"
    [ -x "$bin" ] || die "$bin is missing: run 'make build' first"
    local t0=$SECONDS
    cmd_install
    trap 'cmd_stop' EXIT
    trap 'echo "slurm-lab: error: the command at line $LINENO failed; tearing down" >&2' ERR
    cmd_start
    say "started in $((SECONDS - t0)) s"
    local out="$LAB/test" sweep="Workloads/sweeps/ci-small.toml"
    mkdir -p "$out"
    cd "$ROOT"

    # The unsharded sweep's runs, and the emitted job script.
    "$bin" sweep "$sweep" --dry-run --results-dir "$out/none" | awk '$1 == "run" {print $2}' | sort > "$out/expected.txt"
    local n
    n=$(wc -l < "$out/expected.txt")
    [ "$n" -ge 8 ] || die "the test sweep has $n runs; it needs at least 8"
    "$bin" sweep "$sweep" --emit slurm --array-size 4 --results-dir "$out/emitted" > "$out/job.sh"
    bash -n "$out/job.sh" || die "the --emit slurm script does not parse"
    grep -q '^#SBATCH --array=0-3$' "$out/job.sh" || die "the --emit slurm script has no --array=0-3 line"

    # 4 array tasks, each its own shard from SLURM_ARRAY_TASK_ID/COUNT, each into its own folder.
    local job
    job=$(sbatch --parsable --array=0-3 --chdir="$ROOT" --output="$out/slurm-%A_%a.out" \
        --wrap "exec '$bin' sweep '$sweep' --results-dir '$out/task-'\$SLURM_ARRAY_TASK_ID")
    job="${job%%;*}"
    say "submitted job array $job (4 tasks, $n runs)"
    wait_for 150 sh -c "[ -z \"\$(squeue -h -j $job 2>/dev/null)\" ]" || { cat "$out"/slurm-*.out >&2 || true; die "job $job still queued or running after 150 s"; }
    local i state bad=0
    for i in 0 1 2 3; do
        state=$(scontrol -o show job "${job}_$i" | grep -o 'JobState=[A-Z]* .*ExitCode=[0-9:]*' | sed 's/ .*ExitCode=/ ExitCode=/')
        say "task $i: $state; $(grep -c '^' "$out/slurm-${job}_$i.out" 2>/dev/null || echo 0) output line(s): $(grep 'completed now' "$out/slurm-${job}_$i.out" | tail -1)"
        case "$state" in "JobState=COMPLETED ExitCode=0:0") ;; *) bad=1; cat "$out/slurm-${job}_$i.out" >&2 || true ;; esac
    done
    [ $bad = 0 ] || die "an array task did not complete with exit code 0"
    # Each task did its own shard: 4 folders, none of them the whole sweep.
    for i in 0 1 2 3; do
        [ -f "$out/task-$i/ci-small/sweep.json" ] || die "task $i wrote no sweep folder"
        grep -q "shard $i/4" "$out/slurm-${job}_$i.out" || die "task $i did not run shard $i/4"
    done

    "$bin" merge "$out"/task-{0,1,2,3}/ci-small --output "$out/merged" | tee "$out/merge.txt"
    grep -qx 'missing: none' "$out/merge.txt" || die "the merge reports missing runs"
    grep -qx 'duplicates: none' "$out/merge.txt" || die "the merge reports duplicate runs"
    (cd "$out/merged" && find . -name 'rep-*.json' ! -name '*.failed.json' | sed 's|^\./||; s|\.json$||' | sort) > "$out/merged.txt"
    if ! diff "$out/expected.txt" "$out/merged.txt"; then die "the merged runs differ from the unsharded sweep's"; fi
    [ "$(wc -l < "$out/merged/summary.csv")" -eq $(( $(grep -c '^point ' <("$bin" sweep "$sweep" --dry-run --results-dir "$out/none")) + 1 )) ] \
        || die "summary.csv does not have one row per point"
    say "ok: $n runs over 4 array tasks merged into the unsharded sweep's set; $((SECONDS - t0)) s in all"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    check) cmd_check ;;
    stop) cmd_stop ;;
    test) cmd_test ;;
    -h|--help|"") usage ;;
    *) usage; exit 2 ;;
esac
