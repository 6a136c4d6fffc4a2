#!/usr/bin/env bash
# Builds the O_DIRECT addon (src/native/directio.c) with the node-gyp that ships
# with npm, against the installed Node headers: no downloads.
set -euo pipefail
cd "$(dirname "$0")/../src/native"
out=build/Release/directio.node
if [ -f "$out" ] && [ "$out" -nt directio.c ] && [ "$out" -nt binding.gyp ]; then
  exit 0
fi
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
test -f "$out"
echo "build-native: $out"
