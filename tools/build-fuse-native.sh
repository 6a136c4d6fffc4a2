#!/usr/bin/env bash
# Applies patches/fuse-native-2.2.6.patch to node_modules/fuse-native and
# builds its addon from source with the node-gyp that ships with npm, against
# the system libfuse 2 (pkg-config fuse) and the installed Node headers.
# Nothing is downloaded.  Idempotent: a second run only verifies.
# Run by "npm ci"/"npm install" (package.json postinstall); see patches/README.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="$root/node_modules/fuse-native"
patchfile="$root/patches/fuse-native-2.2.6.patch"
log() { echo "build-fuse-native: $*" >&2; }

if [ ! -f "$pkg/package.json" ]; then
  log "node_modules/fuse-native is not installed (run npm ci first)"; exit 1
fi
version="$(node -p "require(process.argv[1]).version" "$pkg/package.json")"
if [ "$version" != "2.2.6" ]; then
  log "expected fuse-native 2.2.6, found $version: the patch would not apply"; exit 1
fi

# 1. Patch (skip when already applied: the reverse patch then applies cleanly).
# A tree carrying an earlier version of our patch (the copy recorded at
# apply time, or any version in this repository's git history) is first
# restored to pristine, so updating the patch needs no reinstall.
record="$pkg/.ocfs2-fuse.patch"
applies() { (cd "$pkg" && patch -p1 -s -f --dry-run "$@" >/dev/null 2>&1); }
if applies -R <"$patchfile"; then
  :
else
  if ! applies <"$patchfile"; then
    old="$(mktemp)"; trap 'rm -f "$old"' EXIT
    undone=""
    { [ -f "$record" ] && echo record; git -C "$root" log --format=%H -- patches/fuse-native-2.2.6.patch 2>/dev/null || true; } |
      while read -r rev; do
        if [ "$rev" = record ]; then cat "$record"; else git -C "$root" show "$rev:patches/fuse-native-2.2.6.patch" 2>/dev/null || true; fi >"$old"
        if [ -s "$old" ] && applies -R <"$old"; then echo "$rev"; break; fi
      done >"$old.rev"
    undone="$(cat "$old.rev")"; rm -f "$old.rev"
    if [ -z "$undone" ]; then
      log "patch neither applies nor is applied: node_modules/fuse-native was modified; reinstall it (npm ci)"; exit 1
    fi
    if [ "$undone" = record ]; then cat "$record"; else git -C "$root" show "$undone:patches/fuse-native-2.2.6.patch"; fi >"$old"
    (cd "$pkg" && patch -p1 -R -s -f --no-backup-if-mismatch <"$old")
    log "earlier version of the patch ($undone) reverted"
  fi
  (cd "$pkg" && patch -p1 -s -f --no-backup-if-mismatch <"$patchfile")
  log "patch applied"
fi
cp "$patchfile" "$record"

# 2. Build, unless the addon for exactly this patch/Node/libfuse exists.
command -v pkg-config >/dev/null && pkg-config --exists fuse || {
  log "libfuse 2 development files missing (apt-get install libfuse-dev pkg-config)"; exit 1; }
stamp="$(cat "$patchfile" | sha256sum | cut -c1-16) node-$(node -p process.versions.modules)-$(node -v) fuse-$(pkg-config --modversion fuse)"
out="$pkg/build/Release/fuse.node"
if [ -f "$out" ] && [ "$(cat "$pkg/build/ocfs2-stamp" 2>/dev/null)" = "$stamp" ]; then
  :
else
  # npm's own node-gyp: npm exports it to lifecycle scripts; else find it next to npm.
  gyp="${npm_config_node_gyp:-}"
  if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
    gyp=""
    npmcli="$(readlink -f "$(command -v npm)" 2>/dev/null || true)"
    for c in "$(dirname "$npmcli")/../node_modules/node-gyp/bin/node-gyp.js" \
             "$(dirname "$(command -v node)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
      if [ -f "$c" ]; then gyp="$c"; break; fi
    done
  fi
  if [ -z "$gyp" ]; then log "node-gyp (bundled with npm) not found"; exit 1; fi
  # Node headers: npm's configured nodedir, else those next to the node binary.
  nodedir=""
  for d in "${npm_config_nodedir:-}" "$(dirname "$(command -v node)")/.." /usr /usr/local; do
    if [ -n "$d" ] && [ -f "$d/include/node/node_api.h" ]; then nodedir="$(cd "$d" && pwd)"; break; fi
  done
  if [ -z "$nodedir" ]; then log "Node headers (include/node/node_api.h) not found"; exit 1; fi
  rm -rf "$pkg/build"
  if ! (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >"$root/node_modules/.fuse-native-build.log" 2>&1); then
    cat "$root/node_modules/.fuse-native-build.log" >&2
    log "node-gyp build failed"; exit 1
  fi
  echo "$stamp" >"$pkg/build/ocfs2-stamp"
  log "built $out against system libfuse $(pkg-config --modversion fuse)"
fi

# 3. Verify: the patched index.js loads and refuses anything but this build.
node -e '
  const b = require(process.argv[1]);
  if (typeof b !== "function") throw new Error("fuse-native did not load");
' "$pkg" || { log "patched fuse-native does not load"; exit 1; }
if ldd "$out" | grep -q 'fuse-shared-library'; then
  log "$out links the bundled libfuse, expected the system one"; exit 1
fi
