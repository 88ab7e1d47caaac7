#!/usr/bin/env bash
# tests/images/build.sh OUTDIR
#
# Builds the test images as OCI image layouts, without docker, from a
# busybox-static root (ROOTFS, else BUILD/share/husk/rootfs/busybox or
# build/share/husk/rootfs/busybox as `make` leaves it, else a minimal root
# made here from /bin/busybox):
#
#   OUTDIR/busybox     one gzip layer: the busybox root
#   OUTDIR/layers      three layers: busybox; fixtures (/etc/removeme,
#                      /opt/gone/, /opt/opaque/{a,b}); then whiteouts of
#                      /etc/removeme and /opt/gone, /opt/opaque made
#                      opaque, and a new /opt/opaque/c
#   OUTDIR/multiarch   an OCI index: linux/amd64 (the busybox image) and
#                      linux/arm64/v8 (one tiny fake layer)
#   OUTDIR/zstd        one layer, tar+zstd
#   OUTDIR/docker      a Docker schema 2 manifest (Docker media types for
#                      the manifest, config and gzip layer); its config has
#                      Entrypoint, Cmd, Env, WorkingDir and User
#
# Each layout's index.json tags its image "latest". OUTDIR/NAME.digest
# holds the digest of what the tag names (the index, for multiarch), the
# digest a pull by digest uses. Layers are reproducible: sorted names,
# numeric owners 0:0, one fixed mtime, gzip -n. JSON is written by printf
# in a fixed key order, so digests only change when the content does.
#
# tests/images/build.sh --big OUTDIR builds only OUTDIR/big: the busybox
# layer and three layers of HUSK_BIG_MB/3 MiB of random bytes each
# (/big1.bin ... /big3.bin; HUSK_BIG_MB defaults to 96), for the
# interrupted-pull test and bench/pull.
set -euo pipefail

big=0
if [ "${1:-}" = --big ]; then
	big=1
	shift
fi
out=${1:?usage: tests/images/build.sh [--big] OUTDIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
for tool in tar gzip zstd sha256sum; do
	command -v "$tool" >/dev/null ||
		{ echo "build.sh: $tool missing" >&2; exit 1; }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The busybox root to package.
rootfs=${ROOTFS:-}
if [ -z "$rootfs" ]; then
	for c in "${BUILD:-}/share/husk/rootfs/busybox" \
		"$here/build/share/husk/rootfs/busybox" \
		"$here/build-san/share/husk/rootfs/busybox"; do
		[ -x "$c/bin/busybox" ] && { rootfs=$c; break; }
	done
fi
if [ -z "$rootfs" ]; then
	busybox=${BUSYBOX:-/bin/busybox}
	[ -x "$busybox" ] || { echo "build.sh: no busybox root and no $busybox" >&2; exit 1; }
	rootfs=$work/busybox-root
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
	cp "$busybox" "$rootfs/bin/busybox"
	ln -s busybox "$rootfs/bin/sh"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
fi

MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
MT_OCI_GZIP=application/vnd.oci.image.layer.v1.tar+gzip
MT_OCI_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd
MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MT_DOCKER_CONFIG=application/vnd.docker.container.image.v1+json
MT_DOCKER_GZIP=application/vnd.docker.image.rootfs.diff.tar.gzip

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# tar_dir DIR TARFILE: a reproducible tar of DIR's content.
tar_dir() {
	(cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) |
		tar -C "$1" --no-recursion --numeric-owner --owner=0 --group=0 \
			--mtime=@1700000000 --format=gnu -cf "$2" -T -
}

# new_layout DIR: an empty OCI layout.
new_layout() {
	rm -rf "$1"
	mkdir -p "$1/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}

# put_blob LAYOUT FILE: moves FILE into the layout; sets DIGEST, SIZE.
put_blob() {
	SIZE=$(size "$2")
	DIGEST=sha256:$(sha "$2")
	mv "$2" "$1/blobs/sha256/${DIGEST#sha256:}"
}

# put_json LAYOUT TEXT: TEXT (no newline) as a blob; sets DIGEST, SIZE.
put_json() {
	printf '%s' "$2" >"$work/json"
	put_blob "$1" "$work/json"
}

# add_layer LAYOUT TAR gzip|zstd: compresses TAR into the layout; sets
# DIGEST, SIZE (the blob) and DIFF_ID (the tar).
add_layer() {
	DIFF_ID=sha256:$(sha "$2")
	case $3 in
	gzip) gzip -n -c "$2" >"$work/layer" ;;
	zstd) zstd -q -c "$2" >"$work/layer" ;;
	esac
	put_blob "$1" "$work/layer"
}

# config ARCH VARIANT LABEL DIFF_ID...: image config JSON.
config() {
	local arch=$1 variant=$2 label=$3 ids="" id
	shift 3
	for id in "$@"; do ids+="${ids:+,}\"$id\""; done
	printf '{"architecture":"%s",' "$arch"
	[ -n "$variant" ] && printf '"variant":"%s",' "$variant"
	# IMAGE_CONFIG (JSON members) replaces the default Env and Cmd.
	printf '"config":{%s,"Labels":{"husk.test":"%s"}},' \
		"${IMAGE_CONFIG:-\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"]}" "$label"
	printf '"created":"2023-11-14T22:13:20Z","os":"linux",'
	printf '"rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids"
}

# manifest MEDIATYPE CONFIG_MT CONFIG_DIGEST CONFIG_SIZE [LAYER_MT DIGEST SIZE]...
manifest() {
	local mt=$1 cmt=$2 cd=$3 cs=$4 layers=""
	shift 4
	while [ $# -gt 0 ]; do
		layers+="${layers:+,}{\"mediaType\":\"$1\",\"digest\":\"$2\",\"size\":$3}"
		shift 3
	done
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[%s]}' \
		"$mt" "$cmt" "$cd" "$cs" "$layers"
}

# tag LAYOUT NAME MEDIATYPE DIGEST SIZE: index.json naming it "latest",
# and OUTDIR/NAME.digest.
tag() {
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
		"$3" "$4" "$5" >"$1/index.json"
	echo "$4" >"$out/$2.digest"
}

# The busybox root as one tar, used by several images.
tar_dir "$rootfs" "$work/busybox.tar"

# --big: busybox plus three incompressible layers.
if [ "$big" = 1 ]; then
	L=$out/big
	new_layout "$L"
	cp "$work/busybox.tar" "$work/t"
	add_layer "$L" "$work/t" gzip
	descs=("$MT_OCI_GZIP" "$DIGEST" "$SIZE")
	ids=("$DIFF_ID")
	per=$((${HUSK_BIG_MB:-96} / 3))
	for i in 1 2 3; do
		rm -rf "$work/bigroot"
		mkdir -p "$work/bigroot"
		head -c "$((per << 20))" /dev/urandom >"$work/bigroot/big$i.bin"
		tar_dir "$work/bigroot" "$work/t"
		add_layer "$L" "$work/t" gzip
		descs+=("$MT_OCI_GZIP" "$DIGEST" "$SIZE")
		ids+=("$DIFF_ID")
	done
	put_json "$L" "$(config amd64 "" big "${ids[@]}")"
	put_json "$L" "$(manifest $MT_OCI_MANIFEST $MT_OCI_CONFIG "$DIGEST" "$SIZE" "${descs[@]}")"
	tag "$L" big $MT_OCI_MANIFEST "$DIGEST" "$SIZE"
	exit 0
fi

# (1) busybox: one gzip layer.
L=$out/busybox
new_layout "$L"
cp "$work/busybox.tar" "$work/t"
add_layer "$L" "$work/t" gzip
bb_layer=$DIGEST bb_size=$SIZE bb_diff=$DIFF_ID
put_json "$L" "$(config amd64 "" busybox "$bb_diff")"
bb_cfg=$DIGEST bb_cfg_size=$SIZE
put_json "$L" "$(manifest $MT_OCI_MANIFEST $MT_OCI_CONFIG "$bb_cfg" "$bb_cfg_size" $MT_OCI_GZIP "$bb_layer" "$bb_size")"
bb_manifest=$DIGEST bb_manifest_size=$SIZE
tag "$L" busybox $MT_OCI_MANIFEST "$DIGEST" "$SIZE"

# (2) layers: busybox, fixtures, then whiteouts and an opaque directory.
L=$out/layers
new_layout "$L"
cp "$work/busybox.tar" "$work/t"
add_layer "$L" "$work/t" gzip
l1=$DIGEST s1=$SIZE d1=$DIFF_ID
f=$work/fixtures
mkdir -p "$f/etc" "$f/opt/gone/sub" "$f/opt/opaque" "$f/opt/kept"
echo "removed by a whiteout" >"$f/etc/removeme"
echo "in a directory removed by a whiteout" >"$f/opt/gone/file"
echo "deeper" >"$f/opt/gone/sub/file"
echo "hidden by the opaque marker" >"$f/opt/opaque/a"
echo "hidden by the opaque marker" >"$f/opt/opaque/b"
echo "untouched" >"$f/opt/kept/file"
tar_dir "$f" "$work/t"
add_layer "$L" "$work/t" gzip
l2=$DIGEST s2=$SIZE d2=$DIFF_ID
w=$work/whiteouts
mkdir -p "$w/etc" "$w/opt/opaque"
: >"$w/etc/.wh.removeme"
: >"$w/opt/.wh.gone"
: >"$w/opt/opaque/.wh..wh..opq"
echo "written with the opaque marker" >"$w/opt/opaque/c"
tar_dir "$w" "$work/t"
add_layer "$L" "$work/t" gzip
l3=$DIGEST s3=$SIZE d3=$DIFF_ID
put_json "$L" "$(config amd64 "" layers "$d1" "$d2" "$d3")"
put_json "$L" "$(manifest $MT_OCI_MANIFEST $MT_OCI_CONFIG "$DIGEST" "$SIZE" \
	$MT_OCI_GZIP "$l1" "$s1" $MT_OCI_GZIP "$l2" "$s2" $MT_OCI_GZIP "$l3" "$s3")"
tag "$L" layers $MT_OCI_MANIFEST "$DIGEST" "$SIZE"

# (3) multiarch: an index over the busybox image (amd64) and a fake arm64
# image with one tiny layer.
L=$out/multiarch
new_layout "$L"
cp "$out/busybox/blobs/sha256/"* "$L/blobs/sha256/"
a=$work/arm64
mkdir -p "$a"
echo "not really arm64" >"$a/hello-arm64"
tar_dir "$a" "$work/t"
add_layer "$L" "$work/t" gzip
arm_layer=$DIGEST arm_layer_size=$SIZE
put_json "$L" "$(config arm64 v8 multiarch-arm64 "$DIFF_ID")"
put_json "$L" "$(manifest $MT_OCI_MANIFEST $MT_OCI_CONFIG "$DIGEST" "$SIZE" \
	$MT_OCI_GZIP "$arm_layer" "$arm_layer_size")"
arm_manifest=$DIGEST arm_size=$SIZE
index=$(printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}' \
	$MT_OCI_INDEX $MT_OCI_MANIFEST "$bb_manifest" "$bb_manifest_size" \
	$MT_OCI_MANIFEST "$arm_manifest" "$arm_size")
put_json "$L" "$index"
tag "$L" multiarch $MT_OCI_INDEX "$DIGEST" "$SIZE"

# (4) zstd: the busybox root as a tar+zstd layer.
L=$out/zstd
new_layout "$L"
cp "$work/busybox.tar" "$work/t"
add_layer "$L" "$work/t" zstd
zl=$DIGEST zs=$SIZE
put_json "$L" "$(config amd64 "" zstd "$DIFF_ID")"
put_json "$L" "$(manifest $MT_OCI_MANIFEST $MT_OCI_CONFIG "$DIGEST" "$SIZE" $MT_OCI_ZSTD "$zl" "$zs")"
tag "$L" zstd $MT_OCI_MANIFEST "$DIGEST" "$SIZE"

# (5) docker: Docker schema 2 media types throughout.
L=$out/docker
new_layout "$L"
cp "$out/busybox/blobs/sha256/${bb_layer#sha256:}" "$L/blobs/sha256/"
# Its config sets what `husk run IMAGE` merges with the command line.
IMAGE_CONFIG='"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin","FOO=from-image"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo from-cmd; pwd; id -u; echo $FOO"],"WorkingDir":"/srv/app","User":"1000"'
put_json "$L" "$(config amd64 "" docker "$bb_diff")"
unset IMAGE_CONFIG
put_json "$L" "$(manifest $MT_DOCKER_MANIFEST $MT_DOCKER_CONFIG "$DIGEST" "$SIZE" $MT_DOCKER_GZIP "$bb_layer" "$bb_size")"
tag "$L" docker $MT_DOCKER_MANIFEST "$DIGEST" "$SIZE"
