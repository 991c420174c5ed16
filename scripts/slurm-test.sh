#!/usr/bin/env bash
# A sweep on a real Slurm: a one-node cluster on this machine (loopback only), started here.
#
#   scripts/slurm-test.sh            # needs root (daemons, apt-get); builds poslab if needed
#
# 1. Installs Debian's slurm-wlm and munge if missing, starts munged, slurmctld and slurmd with a
#    configuration of their own in a temporary folder (nothing in /etc/slurm is touched).
# 2. Case "array": `poslab sweep --slurm --submit` a 4-run plan of tiny runs as a job array with a
#    report job after it; waits; checks results.csv (4 runs × 2 lengths) and report.html.
# 3. Case "requeue": one longer run; once it has a checkpoint, `scontrol requeue` its task; Slurm
#    sends SIGTERM, poslab stops at the next step with a checkpoint, the task runs again and resumes.
#    Checks that it resumed (two training sessions in environment.json) and that its final
#    checkpoint and eval.json are byte-identical to the same run trained here uninterrupted with as
#    many cores (results are reproducible bit for bit for a given core count).
# Exit 0: both cases passed. Exit 77: Slurm cannot run here (not root, no apt, daemons that do not
# start), said plainly. Anything else: a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
skip() { echo "slurm-test: SKIPPED: $*" >&2; exit 77; }
fail() { echo "slurm-test: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root to start munged, slurmctld and slurmd"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  echo "slurm-test: installing slurm-wlm and munge" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
    || skip "apt-get could not install slurm-wlm and munge"
fi

work=$(mktemp -d /tmp/poslab-slurm.XXXXXX)
chmod 0755 "$work"  # the munge user reaches its folder inside
started=()
cleanup() {
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for file in "$work/slurmd.pid" "$work/slurmctld.pid"; do [ -f "$file" ] && kill "$(cat "$file")" 2>/dev/null || true; done
  sleep 1
}
trap cleanup EXIT

# munge: its own socket and key in $work (a running system munged, if any, is left alone).
mkdir -p "$work/munge" "$work/munge-socket"
chown munge:munge "$work/munge" "$work/munge-socket" 2>/dev/null || skip "no munge user"
chmod 0700 "$work/munge"; chmod 0755 "$work/munge-socket"  # munged wants its socket's folder open to all
if [ -f /etc/munge/munge.key ]; then cp /etc/munge/munge.key "$work/munge/munge.key"
else dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" 2>/dev/null; fi
chown munge:munge "$work/munge/munge.key"; chmod 0400 "$work/munge/munge.key"
socket="$work/munge-socket/munge.socket"
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" 2>"$work/munged.err" \
  || skip "munged does not start: $(cat "$work/munged.err")"
started+=("$(cat "$work/munge/munged.pid")")

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<EOF
ClusterName=poslabtest
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=poslab Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
slurmctld -f "$SLURM_CONF" 2>"$work/slurmctld.err" || skip "slurmctld does not start: $(cat "$work/slurmctld.err")"
slurmd -f "$SLURM_CONF" 2>"$work/slurmd.err" || skip "slurmd does not start: $(cat "$work/slurmd.err")"
for _ in $(seq 1 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %t 2>/dev/null | grep -q idle || skip "the node did not become idle: $(tail -n 5 "$work/slurmctld.log" "$work/slurmd.log" 2>/dev/null)"
echo "slurm-test: one-node cluster up ($(slurmctld -V))" >&2

poslab=${POSLAB:-$root/.build/release/poslab}  # POSLAB: another build of it
[ -x "$poslab" ] || swift build -c release --product poslab >/dev/null

wait_for_queue() {  # until no job of ours is left, at most $1 seconds
  for _ in $(seq 1 "$1"); do [ -z "$(squeue -h 2>/dev/null)" ] && return 0; sleep 1; done
  squeue >&2; fail "jobs still queued after $1 s"
}

# Case "array": a 4-run plan as a job array, then the report job.
sweep=$work/array-sweep
"$poslab" sweep --tasks copy --pes nope,rope --seeds 0,1 --train-lengths 12 --steps 30 --layers 1 --model-dimension 16 \
  --eval-multipliers 1,2 --eval-samples 8 --out "$sweep" --slurm --submit --cpus-per-task 1 --max-parallel 2 > "$work/array.txt"
cat "$work/array.txt" >&2
wait_for_queue 300
rows=$(($(wc -l < "$sweep/results.csv") - 1))
[ "$rows" -eq 8 ] || fail "results.csv has $rows rows, not 4 runs × 2 lengths: $(cat "$sweep"/slurm/*.out)"
[ -s "$sweep/report.html" ] || fail "the report job wrote no report.html"
echo "slurm-test: array: 4 tasks and the report job finished; results.csv has 8 rows" >&2

# Case "requeue": a task requeued mid-run resumes from the checkpoint it wrote on SIGTERM.
grid=(--tasks copy --pes rope --train-lengths 8 --steps 3000 --layers 2 --model-dimension 32 --eval-multipliers 1)
sweep=$work/requeue-sweep
job=$("$poslab" sweep "${grid[@]}" --out "$sweep" --slurm --submit --cpus-per-task 1 | awk '/^submitted/ {print $4}')
[ -n "$job" ] || fail "no job ID"
for _ in $(seq 1 300); do compgen -G "$sweep/runs/*/checkpoint.safetensors" >/dev/null && break; sleep 0.2; done
compgen -G "$sweep/runs/*/checkpoint.safetensors" >/dev/null || fail "the task wrote no checkpoint within 60 s"
sleep 1
scontrol requeue "${job}_0" || fail "scontrol requeue ${job}_0"
# Slurm holds a requeued job back (reason BeginTime) for a while: once it is pending, let it start now.
for _ in $(seq 1 120); do
  [ "$(squeue -h -j "${job}_0" -o %T 2>/dev/null)" = PENDING ] && scontrol update JobId="${job}_0" StartTime=now 2>/dev/null && break
  sleep 0.5
done
wait_for_queue 300
sessions=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sessions"]))' "$sweep"/runs/*/environment.json 2>/dev/null \
  || grep -c '"fromStep"' "$sweep"/runs/*/environment.json)
[ "$sessions" -ge 2 ] || fail "the task did not resume (training sessions: $sessions): $(cat "$sweep"/slurm/*.out)"
grep -q "stopped on request after step" "$sweep"/slurm/"${job}"_0.out || fail "no stop on SIGTERM in the task's output"
reference=$work/uninterrupted
"$poslab" sweep "${grid[@]}" --out "$reference" --plan > /dev/null
SLURM_CPUS_PER_TASK=1 "$poslab" sweep --out "$reference" --run-index 0 > /dev/null 2>&1
cmp "$reference"/runs/*/checkpoint.safetensors "$sweep"/runs/*/checkpoint.safetensors \
  || fail "the requeued run's final checkpoint differs from the uninterrupted run's"
cmp "$reference"/runs/*/eval.json "$sweep"/runs/*/eval.json || fail "eval.json differs"
echo "slurm-test: requeue: stopped on SIGTERM, resumed ($sessions sessions), final checkpoint byte-identical" >&2
echo "slurm-test: PASSED" >&2
