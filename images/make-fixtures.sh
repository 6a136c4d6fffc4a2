#!/usr/bin/env bash
# Builds test fixture images with Debian's mkfs.ocfs2 over a matrix of geometries.
#   images/out/<name>.img   (sparse files; names encode the geometry)
# Usage: images/make-fixtures.sh [OUTDIR]   (default images/out; FIXTURE_SET=full for the whole matrix)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-images/out}
mkdir -p "$out"
command -v mkfs.ocfs2 >/dev/null || { echo "mkfs.ocfs2 not found: run 'make deps'" >&2; exit 1; }

make_one() { # name size mkfs-args...
  local name=$1 size=$2; shift 2
  local img="$out/$name.img"
  [ -s "$img" ] && return 0
  rm -f "$img"; truncate -s "$size" "$img"
  # In cluster mode mkfs.ocfs2 1.8.7 asks "Proceed (y/N)" even with -F, from more than one
  # process (it cannot check the cluster here): answer every prompt with y.
  if ! (set +o pipefail; yes y | timeout 120 mkfs.ocfs2 -q -F "$@" -L "$name" "$img" >/dev/null 2>"$img.log"); then
    echo "mkfs failed for $name: $(tail -2 "$img.log")" >&2; rm -f "$img"; return 1
  fi
  rm -f "$img.log"
  echo "made $img"
}

# The default set: every block size, cluster size, slot count, both modes, both feature levels at least once.
make_one b512-c4k-n1-local       256M -M local -b 512  -C 4096    -N 1
make_one b1k-c64k-n4-cluster-max 512M --cluster-stack=o2cb --cluster-name=fix -b 1024 -C 65536 -N 4 --fs-feature-level=max-features
make_one b4k-c1m-n8-cluster      1G   --cluster-stack=o2cb --cluster-name=fix -b 4096 -C 1048576 -N 8
make_one b4k-c4k-n4-local-max    256M -M local -b 4096 -C 4096    -N 4 --fs-feature-level=max-features
make_one b2k-c4k-n4-compat       256M --cluster-stack=o2cb --cluster-name=fix -b 2048 -C 4096 -N 4 --fs-feature-level=max-compat

if [ "${FIXTURE_SET:-}" = full ]; then
  for bs in 512 1024 4096; do for cs in 4096 65536 1048576; do for n in 1 4 8; do
    for mode in local cluster; do for lvl in default max-features; do
      args=(-b $bs -C $cs -N $n --fs-feature-level=$lvl)
      if [ $mode = local ]; then args+=(-M local); else args+=(--cluster-stack=o2cb --cluster-name=fix); fi
      make_one "b$bs-c$cs-n$n-$mode-$lvl" 1G "${args[@]}" || true
    done; done
  done; done; done
fi
