#!/usr/bin/env bash
# Read-path benchmark (issue 2): sequential read of a 256 MiB file (cold and
# warm) and find+stat over a 10,000-file tree, through our read-only mount and
# through fuse2fs over an ext4 image holding the same files; prints figures
# and ratios (ours / fuse2fs: below 1 is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
CLI="node dist/src/cli/main.js"
out=images/out; mkdir -p "$out"
img=$out/bench-ocfs2.img
ext=$out/bench-ext4.img
KH=../shared/kernel
export KH_DIR=${KH_DIR:-${TMPDIR:-/tmp}/kharness}

if [ ! -s "$img.ready" ]; then
  echo "bench: populating $img with the Linux kernel (qemu harness) ..."
  rm -f "$img"; truncate -s 1G "$img"
  mkfs.ocfs2 -q -F -M local -N 2 -b 4096 -C 4096 "$img" >/dev/null
  [ -x "$KH/run-local.sh" ] || { echo "bench: kernel harness not found at $KH" >&2; exit 1; }
  "$KH/build.sh" >/dev/null 2>&1
  timeout 900 "$KH/run-local.sh" -t 800 "$img" bench/populate-kernel.sh >/dev/null
  touch "$img.ready"
fi

mnt=$(mktemp -d); mnt2=$(mktemp -d); src=$(mktemp -d)
cleanup() { fusermount3 -u -z "$mnt" 2>/dev/null || true; fusermount3 -u -z "$mnt2" 2>/dev/null || true; rmdir "$mnt" "$mnt2" 2>/dev/null || true; rm -rf "$src"; }
trap cleanup EXIT

if [ ! -s "$ext.ready" ]; then
  $CLI -o ro "$img" "$mnt"
  cp -a "$mnt/big-256m.bin" "$mnt/tree" "$src/"
  fusermount3 -u -z "$mnt"
  rm -f "$ext"; truncate -s 1G "$ext"
  mkfs.ext4 -q -F -d "$src" "$ext"
  touch "$ext.ready"
fi

now() { date +%s.%N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }

measure() { # name mountcmd...
  local name=$1; shift
  drop; "$@"; sleep 0.3
  local t0 t1 t2 t3 t4
  t0=$(now); cat "$mnt/big-256m.bin" > /dev/null; t1=$(now)
  cat "$mnt/big-256m.bin" > /dev/null; t2=$(now)
  fusermount3 -u -z "$mnt"; drop; "$@"; sleep 0.3
  t3=$(now); n=$(find "$mnt/tree" -printf '%s %T@\n' | wc -l); t4=$(now)
  fusermount3 -u -z "$mnt"
  local rss=""
  echo "$name cold_read_s=$(secs $t0 $t1) warm_read_s=$(secs $t1 $t2) find_stat_s=$(secs $t3 $t4) files=$n"
}

ours=$(measure ocfs2-fuse $CLI -o ro "$img" "$mnt")
theirs=$(measure fuse2fs fuse2fs -o ro,fakeroot "$ext" "$mnt")
echo "$ours"; echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import sys
def parse(l): return {k: float(v) for k, v in (x.split('=') for x in l.split()[1:])}
a, b = parse(sys.argv[1]), parse(sys.argv[2])
mb = 256
print(f"read-bench: sequential read 256 MiB cold: ours {mb/a['cold_read_s']:.0f} MB/s, fuse2fs {mb/b['cold_read_s']:.0f} MB/s, time ratio {a['cold_read_s']/b['cold_read_s']:.2f}")
print(f"read-bench: sequential read 256 MiB warm: ours {mb/a['warm_read_s']:.0f} MB/s, fuse2fs {mb/b['warm_read_s']:.0f} MB/s, time ratio {a['warm_read_s']/b['warm_read_s']:.2f}")
print(f"read-bench: find+stat {int(a['files'])} entries: ours {a['find_stat_s']:.2f} s, fuse2fs {b['find_stat_s']:.2f} s, time ratio {a['find_stat_s']/b['find_stat_s']:.2f}")
PY
