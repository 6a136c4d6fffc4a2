#!/usr/bin/env bash
# Write-path benchmark (issue 4), figures only (nothing here fails on speed).
# Ours (read-write FUSE mount of a fresh mkfs.ocfs2 image) side by side with
# fuse2fs -o rw,fakeroot on an ext4 image of the same size:
#   sequential write 1 GiB (1 MiB blocks, fsync at the end), sequential read
#   of it (remounted, page cache dropped); random 4 KiB writes (+fsync) and
#   reads on a 256 MiB file; create/stat/unlink of 10,000 files; unpack of a
#   2,000-file tree (tar, then fsync of the root) and its read-back after a remount.
# Ratios are time(ours)/time(fuse2fs): below 1 is faster.  Then: the FUSE
# write request sizes our daemon receives (big writes: 128 KiB), and its
# memory: VmHWM per phase, and VmRSS along a long run with --cache-mb 8
# (unpack / read back / delete a 2,000-file tree, repeatedly).
# Env: RWB_DIR (work dir, default a temp dir), RWB_SIZE_MB (image size, 2048), RWB_SKIP_SUITE=1 (only the request sizes and the long run),
# RWB_MEM_ROUNDS (long-run rounds, 12), RWB_RAND_OPS (4000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/sbin:/usr/sbin
CLI=dist/src/cli/main.js
SIZE_MB=${RWB_SIZE_MB:-2048}
MEM_ROUNDS=${RWB_MEM_ROUNDS:-12}
RAND_OPS=${RWB_RAND_OPS:-4000}
work=${RWB_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/rw-bench.XXXXXX")}
mkdir -p "$work"
mnt=$work/mnt; mkdir -p "$mnt"
oimg=$work/ocfs2.img; eimg=$work/ext4.img
PID=""
cleanup() {
  fusermount3 -u -z "$mnt" 2>/dev/null || true
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ -z "${RWB_DIR:-}" ] && rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# fsync of a directory: commits our journal / flushes fuse2fs (syncfs does not reach a FUSE daemon).
fsyncdir() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# mount FS [extra daemon args...]: sets PID (the daemon, in the foreground, in the background of this shell)
mount_fs() {
  local fs=$1; shift
  drop
  if [ "$fs" = ours ]; then
    node "$CLI" -f "$@" "$oimg" "$mnt" 2>"$work/ours.log" &
    PID=$!
    for _ in $(seq 1 300); do grep -q 'mounted .* (read-write' "$work/ours.log" && break; sleep 0.1; done
    grep -q 'mounted .* (read-write' "$work/ours.log" || { cat "$work/ours.log" >&2; exit 1; }
  else
    # (fuse2fs says "Writing to the journal is not supported": it writes ext4 without journaling.)
    fuse2fs -f -o rw,fakeroot "$eimg" "$mnt" >"$work/fuse2fs.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do mountpoint -q "$mnt" && break; sleep 0.1; done
    mountpoint -q "$mnt" || { cat "$work/fuse2fs.log" >&2; exit 1; }
  fi
}
HWM_LOG=$work/hwm
rm -f "$HWM_LOG".*
umount_fs() { # phase-name: records the daemon's VmHWM (ours), unmounts, waits for the daemon to finish
  [ -f "/proc/$PID/status" ] && echo "$1 $(status_kb "$PID" VmHWM) $(status_kb "$PID" VmRSS)" >> "$HWM_LOG.$2"
  fusermount3 -u "$mnt"
  wait "$PID" || echo "bench: $2 daemon exited with $?" >&2
  PID=""
}

make_images() {
  rm -f "$oimg" "$eimg"
  truncate -s "${SIZE_MB}M" "$oimg" "$eimg"
  mkfs.ocfs2 -q -F -M local -N 2 -b 4096 -C 4096 "$oimg" >/dev/null
  mkfs.ext4 -q -F -b 4096 "$eimg"
}

# A 2,000-file source tree (20 dirs x 100 files, 0..64 KiB), made once.
src=$work/src
if [ ! -d "$src" ]; then
  python3 - "$src" <<'PY'
import os, sys, random
random.seed(4)
root = sys.argv[1]
for d in range(20):
    p = os.path.join(root, f"dir{d:02d}", "sub")
    os.makedirs(p)
    for f in range(100):
        q = os.path.join(root, f"dir{d:02d}", f"file{f:03d}") if f < 90 else os.path.join(p, f"file{f:03d}")
        with open(q, "wb") as fh:
            fh.write(os.urandom(random.choice([0, 100, 3000, 9000, 40000, 65536]) if f % 7 else random.randrange(0, 65536)))
PY
  tar -C "$src" -cf "$work/tree.tar" .
fi

RAND_PY='
import os, sys, random, time
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
random.seed(7)
blocks = (256 << 20) // 4096
fd = os.open(path, os.O_RDWR)
buf = os.urandom(4096)
t0 = time.time()
for _ in range(n):
    off = random.randrange(blocks) * 4096
    if mode == "w": os.pwrite(fd, buf, off)
    else: assert len(os.pread(fd, 4096, off)) == 4096
if mode == "w": os.fsync(fd)
print(f"{time.time() - t0:.3f}")
'
FILES_PY='
import os, sys, time
d, n, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.time()
for i in range(n):
    p = os.path.join(d, f"f{i:05d}")
    if phase == "create": os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    elif phase == "stat": os.stat(p)
    else: os.unlink(p)
if phase != "stat":
    fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)
print(f"{time.time() - t0:.3f}")
'

run_suite() { # fs -> prints key=value figures
  local fs=$1 t0 t1
  make_images
  mount_fs "$fs"
  t0=$(now); dd if=/dev/zero of="$mnt/seq" bs=1M count=1024 conv=fsync status=none; t1=$(now)
  echo "seq_write=$(secs "$t0" "$t1")"
  umount_fs seq_write "$fs"; mount_fs "$fs"
  t0=$(now); dd if="$mnt/seq" of=/dev/null bs=1M status=none; t1=$(now)
  echo "seq_read=$(secs "$t0" "$t1")"
  rm "$mnt/seq"
  dd if=/dev/zero of="$mnt/rand" bs=1M count=256 conv=fsync status=none
  echo "rand_write=$(python3 -c "$RAND_PY" "$mnt/rand" "$RAND_OPS" w)"
  umount_fs rand_write "$fs"; mount_fs "$fs"
  echo "rand_read=$(python3 -c "$RAND_PY" "$mnt/rand" "$RAND_OPS" r)"
  rm "$mnt/rand"
  mkdir "$mnt/many"
  echo "create_10k=$(python3 -c "$FILES_PY" "$mnt/many" 10000 create)"
  umount_fs create "$fs"; mount_fs "$fs"
  echo "stat_10k=$(python3 -c "$FILES_PY" "$mnt/many" 10000 stat)"
  echo "unlink_10k=$(python3 -c "$FILES_PY" "$mnt/many" 10000 unlink)"
  t0=$(now); tar -C "$mnt" -xf "$work/tree.tar"; fsyncdir "$mnt"; t1=$(now)
  echo "untar_2k=$(secs "$t0" "$t1")"
  umount_fs untar "$fs"; mount_fs "$fs"
  t0=$(now); tar -C "$mnt" -cf - . | cat > /dev/null; t1=$(now)
  echo "readback_2k=$(secs "$t0" "$t1")"
  umount_fs readback "$fs"
  [ "$fs" = ours ] && { fsck.ocfs2 -fn "$oimg" > "$work/fsck.log" 2>&1 && echo "fsck_clean=1" || echo "fsck_clean=0"; }
  true
}

echo "rw-bench: ${SIZE_MB} MiB images in $work"
if [ -z "${RWB_SKIP_SUITE:-}" ]; then
ours=$(run_suite ours | tr '\n' ' ')
theirs=$(run_suite fuse2fs | tr '\n' ' ')
echo "ours:    $ours"
echo "fuse2fs: $theirs"
python3 - "$ours" "$theirs" "$RAND_OPS" <<'PY'
import sys
def parse(l): return {k: float(v) for k, v in (x.split('=') for x in l.split() if '=' in x)}
a, b, n = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
rows = [
  ("sequential write 1 GiB (1 MiB, fsync)", "seq_write", lambda s: f"{1024/s:7.0f} MB/s"),
  ("sequential read 1 GiB (cold)", "seq_read", lambda s: f"{1024/s:7.0f} MB/s"),
  (f"random 4 KiB write x{n} (+fsync)", "rand_write", lambda s: f"{n/s:7.0f} IOPS"),
  (f"random 4 KiB read x{n} (cold)", "rand_read", lambda s: f"{n/s:7.0f} IOPS"),
  ("create 10,000 files", "create_10k", lambda s: f"{10000/s:7.0f} /s"),
  ("stat 10,000 files (cold)", "stat_10k", lambda s: f"{10000/s:7.0f} /s"),
  ("unlink 10,000 files", "unlink_10k", lambda s: f"{10000/s:7.0f} /s"),
  ("unpack 2,000-file tree (+fsync)", "untar_2k", lambda s: f"{s:7.2f} s"),
  ("read back 2,000-file tree (cold)", "readback_2k", lambda s: f"{s:7.2f} s"),
]
print(f"{'rw-bench':40s} {'ours':>12s} {'fuse2fs':>12s}  time ratio ours/fuse2fs")
for name, k, fmt in rows:
    print(f"{name:40s} {fmt(a[k]):>12s} {fmt(b[k]):>12s}  {a[k]/b[k]:6.2f}")
if a.get("fsck_clean") is not None:
    print(f"fsck.ocfs2 -fn after the suite: {'clean' if a['fsck_clean'] == 1 else 'NOT CLEAN'}")
PY
echo "rw-bench: our daemon's VmHWM (peak RSS) per mount, KiB:"
awk '{printf "  %-12s VmHWM %7d  VmRSS at unmount %7d\n", $1, $2, $3; if ($2 > m) m = $2} END {printf "  peak %d KiB (%.0f MiB)\n", m, m/1024}' "$HWM_LOG.ours"
grep -q 'All passes succeeded' "$work/fsck.log" || { echo "rw-bench: fsck.ocfs2 output:"; cat "$work/fsck.log"; }
fi

# Big writes: the sizes of the FUSE write requests our daemon gets for a 16 MiB sequential write (libfuse -d log).
make_images
node "$CLI" -d "$oimg" "$mnt" 2>"$work/debug.log" &
PID=$!
for _ in $(seq 1 300); do grep -q 'mounted .* (read-write' "$work/debug.log" && break; sleep 0.1; done
dd if=/dev/zero of="$mnt/bw" bs=1M count=16 conv=fsync status=none
fusermount3 -u "$mnt"; wait "$PID" || true; PID=""
echo "rw-bench: FUSE write request sizes for a 16 MiB write (bytes: count): $(grep -oE '^write\[[0-9]+\] [0-9]+ bytes' "$work/debug.log" | awk '{print $2}' | sort -n | uniq -c | awk '{printf "%s: %s  ", $2, $1}')"

# Memory over a long run with a small block cache: VmRSS after each round of unpack / read back / delete.
mount_fs ours --cache-mb 8
rss0=$(status_kb "$PID" VmRSS)
series=""
t0=$(now)
for i in $(seq 1 "$MEM_ROUNDS"); do
  mkdir "$mnt/r$i"; tar -C "$mnt/r$i" -xf "$work/tree.tar"
  tar -C "$mnt/r$i" -cf - . | cat > /dev/null
  dd if=/dev/zero of="$mnt/r$i/big" bs=1M count=64 status=none
  [ $((i % 2)) = 0 ] && rm -rf "$mnt/r$((i - 1))"
  fsyncdir "$mnt"
  series="$series $(( $(status_kb "$PID" VmRSS) / 1024 ))"
done
t1=$(now)
rss1=$(status_kb "$PID" VmRSS); hwm=$(status_kb "$PID" VmHWM)
echo "rw-bench: long run with --cache-mb 8 ($MEM_ROUNDS rounds, $(secs "$t0" "$t1") s): VmRSS start $((rss0 / 1024)) MiB, end $((rss1 / 1024)) MiB, VmHWM $((hwm / 1024)) MiB; VmRSS (MiB) per round:$series"
umount_fs long-run ours
fsck.ocfs2 -fn "$oimg" >/dev/null 2>&1 && echo "rw-bench: fsck.ocfs2 -fn after the long run: clean" || echo "rw-bench: fsck.ocfs2 -fn after the long run: NOT CLEAN"
