#!/usr/bin/env bash
# tests/runtime/bundle.sh DIR ROOTFS [terminal] -- ARGS...
# Writes an OCI bundle: DIR/config.json from `husk-runtime spec`, with
# the given process args, and DIR/rootfs linked to ROOTFS.
set -eu
dir=$1 rootfs=$2
shift 2
terminal=false
if [ "${1:-}" = terminal ]; then terminal=true; shift; fi
[ "${1:-}" = -- ] && shift
mkdir -p "$dir"
rm -f "$dir/config.json" "$dir/rootfs"
"${RUNTIME:?}" spec --bundle "$dir"
ln -s "$rootfs" "$dir/rootfs"
python3 - "$dir/config.json" "$terminal" "$@" <<'P'
import json, sys
path, terminal, args = sys.argv[1], sys.argv[2] == "true", sys.argv[3:]
c = json.load(open(path))
c["process"]["terminal"] = terminal
c["process"]["args"] = args
c["root"]["readonly"] = False
json.dump(c, open(path, "w"), indent=1)
P
