#!/usr/bin/env bash
# A real single-node SLURM on localhost for the tests: munge, slurmctld and slurmd from Debian's packages.
#
#   tests/slurm/cluster.sh start STATE_DIR   install (if needed), configure, start; PIDs go to STATE_DIR
#   tests/slurm/cluster.sh stop STATE_DIR    stop exactly the daemons that `start` started, by PID
#
# Needs root and apt-get (as in CI). Exit status 3 means "cannot run here" and the reason is printed.
set -euo pipefail

action=${1:?start or stop}
state=${2:?state directory}
mkdir -p "$state"

cannot() {
    echo "cannot run a local SLURM: $*" >&2
    exit 3
}

start() {
    [ "$(id -u)" -eq 0 ] || cannot "needs root (to install packages and run slurmd)"
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
        command -v apt-get >/dev/null || cannot "slurm is not installed and there is no apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >"$state/apt.log" 2>&1 \
            || { apt-get update >>"$state/apt.log" 2>&1 \
                && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
                    >>"$state/apt.log" 2>&1; } \
            || cannot "apt-get install slurmctld slurmd slurm-client munge failed (see $state/apt.log)"
    fi

    if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
        cannot "a slurmctld or slurmd is already running on this machine; not starting a second one"
    fi

    # munge: a key, then the daemon as its own user.
    mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    if ! pgrep -x munged >/dev/null; then
        runuser -u munge -- munged --pid-file=/run/munge/munged.pid
        sleep 1
        cat /run/munge/munged.pid >"$state/munged.pid"
    fi

    # One node, one partition. srun inside jobs reads /etc/slurm/slurm.conf, so the file goes there.
    # The node declares 64 GB whatever the machine has (config_overrides; memory is not a consumable
    # resource here), so the profile's real memory requests (16 GB for a model job) are accepted on a
    # small CI machine; CPUs are the machine's own.
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=64000
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    if [ -f /etc/slurm/slurm.conf ] && [ ! -f "$state/slurm.conf.created" ] && ! grep -q "prh test cluster" /etc/slurm/slurm.conf; then
        cannot "/etc/slurm/slurm.conf exists and was not written by this script; not touching it"
    fi
    cat >/etc/slurm/slurm.conf <<EOF
# prh test cluster: one node on localhost
ClusterName=prh
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmUser=root
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    touch "$state/slurm.conf.created"
    slurmctld -c -i
    slurmd -c
    for _ in $(seq 1 60); do
        if sinfo -h -o "%T" 2>/dev/null | grep -q -E "idle|mixed|allocated"; then
            echo "SLURM up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
            return 0
        fi
        sleep 1
    done
    cannot "slurmctld/slurmd did not come up (see $state/slurmctld.log, $state/slurmd.log)"
}

stop() {
    for daemon in slurmd slurmctld munged; do
        if [ -s "$state/$daemon.pid" ]; then
            pid=$(cat "$state/$daemon.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$state/$daemon.pid"
        fi
    done
    if [ -f "$state/slurm.conf.created" ]; then
        rm -f /etc/slurm/slurm.conf "$state/slurm.conf.created"
    fi
}

"$action"
