#!/usr/bin/env bash
# Builds our N-API addons with the node-gyp that ships with npm, against the
# installed Node headers: no downloads.
#   directio.node: O_DIRECT I/O for the o2hb disk heartbeat (directio.c)
#   fuse3ll.node:  the FUSE front end over libfuse 3's low-level API (fuse3ll.c;
#                  needs libfuse3-dev and pkg-config)
set -euo pipefail
cd "$(dirname "$0")/../src/native"
fresh=1
for pair in directio:directio.c fuse3ll:fuse3ll.c; do
  out="build/Release/${pair%%:*}.node"
  if ! { [ -f "$out" ] && [ "$out" -nt "${pair#*:}" ] && [ "$out" -nt binding.gyp ]; }; then fresh=0; fi
done
if [ "$fresh" = 1 ]; then exit 0; fi
gyp=""
for c in "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js" \
         "$(dirname "$(command -v node)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -f "$c" ]; then gyp="$c"; break; fi
done
if [ -z "$gyp" ]; then echo "build-native: node-gyp (bundled with npm) not found" >&2; exit 1; fi
# Node's own headers: the distro's /usr/include/node, or those next to the node binary.
nodedir=""
for d in "$(dirname "$(command -v node)")/.." /usr /usr/local; do
  if [ -f "$d/include/node/node_api.h" ]; then nodedir="$(cd "$d" && pwd)"; break; fi
done
if [ -z "$nodedir" ]; then echo "build-native: Node headers (include/node/node_api.h) not found" >&2; exit 1; fi
node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >/dev/null
test -f build/Release/directio.node && test -f build/Release/fuse3ll.node
echo "build-native: build/Release/directio.node build/Release/fuse3ll.node"
