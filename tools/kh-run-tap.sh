#!/bin/bash
# Boot the kernel harness VM (../shared/kernel, see its README) with IMAGE as
# /dev/vda (cache=none, no qemu locking: shared with processes on the host) and
# a virtio-net eth0 backed by a tap device that lives in a network namespace
# the caller created.  A variant of the harness's run-local.sh, which only
# offers "-nic none"; the harness itself is used unchanged (kh-common.sh for
# the qemu base arguments, its guest init and initramfs).
#
#   kh-run-tap.sh -n NETNS -T TAP -a GUEST_CIDR [-i FILE]... [-k RUNDIR] [-m MB] [-t SECONDS] IMAGE SCRIPT
#
#   -n NETNS       network namespace that holds TAP (qemu runs inside it)
#   -T TAP         tap device in NETNS (created by the caller: ip tuntap add dev TAP mode tap)
#   -a CIDR        guest eth0 address, e.g. 10.78.0.2/24 (kh.ip= on the kernel command line)
#   -i FILE        copy FILE into the guest's working directory (repeatable)
#   -k RUNDIR      run directory (kept); default a fresh one under $KH_DIR/runs, removed afterwards
#   -m MB          guest memory (default 768)
#   -t SECONDS     timeout for the VM (default 300)
#
# SCRIPT runs in the guest under busybox sh with cwd /kh/vm (= RUNDIR/vm on the
# host), guest-lib.sh sourced.  Output and exit status as run-local.sh:
# the script's out.log is printed, 124 = VM timed out, 125 = harness error.
# Env: KH_HOME (harness directory; default ../shared/kernel next to this
# repository), KH_DIR, KH_ACCEL, KH_SMP, KH_APPEND, KH_VERBOSE=1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KH_HOME=${KH_HOME:-$(cd "$HERE/../../shared/kernel" 2>/dev/null && pwd)}
[ -n "$KH_HOME" ] && [ -f "$KH_HOME/kh-common.sh" ] || { echo "kh-run-tap: kernel harness not found (set KH_HOME)" >&2; exit 125; }
KH_HERE=$KH_HOME
. "$KH_HOME/kh-common.sh"

NS=; TAP=; ADDR=; INPUTS=(); RUNDIR=; MEM=768; TMO=300
while getopts "n:T:a:i:k:m:t:h" o; do
    case $o in
        n) NS=$OPTARG;; T) TAP=$OPTARG;; a) ADDR=$OPTARG;; i) INPUTS+=("$OPTARG");;
        k) RUNDIR=$OPTARG;; m) MEM=$OPTARG;; t) TMO=$OPTARG;;
        *) sed -n '2,24p' "$0" >&2; exit 125;;
    esac
done
shift $((OPTIND-1))
[ $# -eq 2 ] && [ -n "$NS" ] && [ -n "$TAP" ] && [ -n "$ADDR" ] || { sed -n '2,24p' "$0" >&2; exit 125; }
IMG=$1; SCRIPT=$2
[ -e "$IMG" ] || { echo "kh-run-tap: no such image: $IMG" >&2; exit 125; }
[ -f "$SCRIPT" ] || { echo "kh-run-tap: no such script: $SCRIPT" >&2; exit 125; }
ip netns exec "$NS" ip link show "$TAP" >/dev/null 2>&1 || { echo "kh-run-tap: no tap device $TAP in network namespace $NS" >&2; exit 125; }
kh_check_built || exit 125

KEEP=${KH_KEEP:-0}
if [ -z "$RUNDIR" ]; then
    mkdir -p "$KH_DIR/runs"; RUNDIR=$(mktemp -d "$KH_DIR/runs/tap.XXXXXX")
else
    KEEP=1; mkdir -p "$RUNDIR"
fi
RUNDIR=$(cd "$RUNDIR" && pwd)
mkdir -p "$RUNDIR/vm"; rm -f "$RUNDIR/vm/rc" "$RUNDIR/vm/out.log"
cp "$SCRIPT" "$RUNDIR/vm/cmd.sh"
for f in "${INPUTS[@]}"; do cp -r "$f" "$RUNDIR/vm/" || exit 125; done

kh_qemu_base vm "$RUNDIR" "$MEM" "kh.ip=$ADDR"
kh_disk_args "$IMG" shared
QARGS+=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no"
        -device "virtio-net-pci,netdev=n0,mac=52:54:00:78:00:02")

[ "${KH_VERBOSE:-0}" = 1 ] && echo "ip netns exec $NS qemu-system-x86_64 ${QARGS[*]}" >&2
T0=$(date +%s.%N)
timeout --foreground -k 5 "$TMO" ip netns exec "$NS" qemu-system-x86_64 "${QARGS[@]}" > "$RUNDIR/vm.qemu.log" 2>&1
QRC=$?
T1=$(date +%s.%N)
echo "$T0 $T1" > "$RUNDIR/vm.times"

[ -f "$RUNDIR/vm/out.log" ] && cat "$RUNDIR/vm/out.log"
if [ $QRC -eq 124 ] || [ $QRC -eq 137 ]; then
    echo "kh-run-tap: VM timed out after ${TMO}s (console: $RUNDIR/vm.console)" >&2; RC=124; KEEP=1
elif [ -f "$RUNDIR/vm/rc" ]; then
    RC=$(cat "$RUNDIR/vm/rc")
else
    echo "kh-run-tap: no result (qemu rc=$QRC); qemu log / console tail:" >&2
    tail -n 20 "$RUNDIR/vm.qemu.log" >&2; tail -n 60 "$RUNDIR/vm.console" >&2
    RC=125; KEEP=1
fi
[ "${KH_VERBOSE:-0}" = 1 ] && awk -v a="$T0" -v b="$T1" 'BEGIN{printf "kh-run-tap: VM wall time %.2fs\n", b-a}' >&2
if [ "$KEEP" = 1 ]; then echo "kh-run-tap: run dir kept: $RUNDIR" >&2; else rm -rf "$RUNDIR"; fi
exit "$RC"
