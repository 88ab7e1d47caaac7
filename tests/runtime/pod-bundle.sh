#!/usr/bin/env bash
# tests/runtime/pod-bundle.sh DIR ROOTFS POD [PIDNS-PATH] -- ARGS...
# A bundle (tests/runtime/bundle.sh) of a member of pod POD (annotation
# io.husk.pod), joining the PID namespace at PIDNS-PATH when one is given,
# with a bind mount of a host directory when POD_BIND=SRC:DEST[:ro].
set -eu
dir=$1 rootfs=$2 pod=$3
shift 3
pidns=""
if [ "${1:-}" != -- ]; then pidns=$1; shift; fi
"$(dirname "$0")/bundle.sh" "$dir" "$rootfs" "$@"
python3 - "$dir/config.json" "$pod" "$pidns" "${POD_BIND:-}" <<'P'
import json, sys
path, pod, pidns, bind = sys.argv[1:5]
c = json.load(open(path))
c.setdefault("annotations", {})["io.husk.pod"] = pod
if pidns:
    for ns in c["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = pidns
if bind:
    src, dest, *mode = bind.split(":")
    c["mounts"].append({"destination": dest, "type": "bind", "source": src,
                        "options": ["rbind"] + (["ro"] if mode == ["ro"] else [])})
json.dump(c, open(path, "w"), indent=1)
P
