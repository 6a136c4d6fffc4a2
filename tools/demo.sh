#!/usr/bin/env bash
# make demo: make a volume with the bundled mkfs, mount it with ocfs2-fuse,
# write and list it; then mount a kernel-written reference volume read-only.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI="node dist/src/cli/main.js"
work=$(mktemp -d); mnt="$work/mnt"; mkdir "$mnt"
cleanup() { fusermount3 -u -z "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

img="$work/demo.img"
truncate -s 512M "$img"
if $CLI --help | grep -qE "^  mkfs( |$)"; then
  echo "== ocfs2-fuse mkfs -L demo -N 4 $img"
  $CLI mkfs -q -F -L demo -N 4 -M local "$img"
else
  echo "== (bundled mkfs not built yet) mkfs.ocfs2 -M local -N 4 -L demo $img"
  mkfs.ocfs2 -q -F -M local -N 4 -L demo "$img"
fi

if $CLI -o rw "$img" "$mnt" 2>/dev/null; then
  echo "== mounted read-write on $mnt; writing a few files"
  mkdir -p "$mnt/docs"; echo "hello from ocfs2-fuse" > "$mnt/docs/hello.txt"
  seq 1 100000 > "$mnt/docs/numbers.txt"; ln -s docs/hello.txt "$mnt/link"
  sync; ls -la "$mnt" "$mnt/docs"; df -h "$mnt"
  fusermount3 -u "$mnt"; sleep 0.5
  echo "== fsck.ocfs2 -fn (the ocfs2-tools judge)"
  fsck.ocfs2 -fn "$img" | tail -2 || true
else
  echo "== mounting read-only on $mnt"
  $CLI -o ro "$img" "$mnt"
  ls -la "$mnt"; df -h "$mnt"
  fusermount3 -u "$mnt"; sleep 0.5
fi

ref=images/reference/local-4k.img.xz
if [ -f "$ref" ]; then
  echo "== a volume written by the Linux kernel, mounted read-only"
  xz -dc "$ref" | cp --sparse=always /dev/stdin "$work/ref.img"
  $CLI -o ro "$work/ref.img" "$mnt"
  ls -la "$mnt" | head -25
  echo "-- cat /small/s100:"; cat "$mnt/small/s100"; echo
  echo "-- getfattr /xattr/small:"; getfattr -d "$mnt/xattr/small" 2>/dev/null | tail -n +2
  echo "-- stat /times/past:"; stat -c '%n %y' "$mnt/times/past"
  du -sh "$mnt"
  fusermount3 -u "$mnt"
fi
echo "== demo done"
