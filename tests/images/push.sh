#!/usr/bin/env bash
# tests/images/push.sh OUTDIR HOST:PORT [--creds USER:PASS] [NAME...]
#
# Pushes the OCI layouts tests/images/build.sh made in OUTDIR (all of them,
# or the NAMEs given) to the plain-HTTP registry at HOST:PORT as
# HOST:PORT/NAME:latest, and checks that the registry then serves exactly
# the manifest that was built (its digest against OUTDIR/NAME.digest).
#
# skopeo pushes the OCI images: with --preserve-digests it refuses to
# change any manifest, and skopeo 1.9 keeps the zstd layer, the index
# (--all, every platform) and the media types as they are. It cannot read
# a Docker schema 2 manifest out of an OCI layout (it looks only for OCI
# descriptors in index.json), so that image, and any image whose digest
# skopeo did not keep, goes through the registry API with curl: every
# blob (monolithic upload), every manifest by digest, then the tag.
# HUSK_PUSH_WITH=curl pushes everything that way.
set -euo pipefail

usage() {
	echo "usage: $0 OUTDIR HOST:PORT [--creds USER:PASS] [NAME...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
out=$1 registry=$2
shift 2
creds=""
if [ "${1:-}" = --creds ]; then
	[ -n "${2:-}" ] || usage
	creds=$2
	shift 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in "$out"/*/oci-layout; do
		[ -e "$d" ] && names+=("$(basename "$(dirname "$d")")")
	done
fi
[ ${#names[@]} -gt 0 ] || { echo "push.sh: no image layouts in $out" >&2; exit 1; }

base=http://$registry
curl_auth=()
[ -n "$creds" ] && curl_auth=(-u "$creds")
ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

# The media type of what index.json tags "latest".
tagged_media_type() {
	sed -n 's/.*"mediaType":"\([^"]*\)".*/\1/p' "$1/index.json" | head -1
}

# The digest the registry serves for NAME:latest.
served_digest() {
	curl -s "${curl_auth[@]}" -o /dev/null -D - -H "Accept: $ACCEPT" \
		"$base/v2/$1/manifests/latest" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

push_skopeo() {
	local name=$1 layout=$2 args=(--dest-tls-verify=false --preserve-digests)
	[ -n "$creds" ] && args+=(--dest-creds "$creds")
	[ "$(tagged_media_type "$layout")" = application/vnd.oci.image.index.v1+json ] &&
		args+=(--all)
	skopeo copy -q "${args[@]}" "oci:$layout:latest" "docker://$registry/$name:latest"
}

curl_put_blob() {
	local repo=$1 digest=$2 file=$3 loc sep
	[ "$(curl -s "${curl_auth[@]}" -o /dev/null -w '%{http_code}' -I \
		"$base/v2/$repo/blobs/$digest")" = 200 ] && return 0
	loc=$(curl -sf "${curl_auth[@]}" -o /dev/null -D - -X POST \
		"$base/v2/$repo/blobs/uploads/" | tr -d '\r' |
		sed -n 's/^[Ll]ocation: *//p')
	[ -n "$loc" ] || { echo "push.sh: no upload location for $repo" >&2; return 1; }
	case $loc in /*) loc=$base$loc ;; esac
	sep='?'
	[[ $loc == *\?* ]] && sep='&'
	curl -sf "${curl_auth[@]}" -o /dev/null -X PUT \
		-H 'Content-Type: application/octet-stream' \
		--data-binary @"$file" "$loc${sep}digest=$digest"
}

curl_put_manifest() {
	local repo=$1 ref=$2 media_type=$3 file=$4
	curl -sf "${curl_auth[@]}" -o /dev/null -X PUT -H "Content-Type: $media_type" \
		--data-binary @"$file" "$base/v2/$repo/manifests/$ref"
}

# Every blob, then the image manifests by digest (an index needs them
# first), then the tagged manifest. build.sh writes every manifest as
# {"schemaVersion":2,"mediaType":"...", so the media type is at the start.
push_curl() {
	local name=$1 layout=$2 f mt
	for f in "$layout"/blobs/sha256/*; do
		curl_put_blob "$name" "sha256:$(basename "$f")" "$f"
	done
	for f in "$layout"/blobs/sha256/*; do
		mt=$(head -c 200 "$f" | sed -n 's/^{"schemaVersion":2,"mediaType":"\([^"]*manifest[^"]*\)".*/\1/p')
		case $mt in
		*manifest.v1+json | *manifest.v2+json)
			curl_put_manifest "$name" "sha256:$(basename "$f")" "$mt" "$f" ;;
		esac
	done
	local digest
	digest=$(cat "$out/$name.digest")
	curl_put_manifest "$name" latest "$(tagged_media_type "$layout")" \
		"$layout/blobs/sha256/${digest#sha256:}"
}

for name in "${names[@]}"; do
	layout=$out/$name
	[ -f "$layout/index.json" ] || { echo "push.sh: $layout is not an OCI layout" >&2; exit 1; }
	want=$(cat "$out/$name.digest")
	case ${HUSK_PUSH_WITH:-skopeo}:$(tagged_media_type "$layout") in
	skopeo:application/vnd.oci.*) push_skopeo "$name" "$layout" || true ;;
	esac
	if [ "$(served_digest "$name")" != "$want" ]; then
		push_curl "$name" "$layout"
	fi
	got=$(served_digest "$name")
	[ "$got" = "$want" ] ||
		{ echo "push.sh: $registry/$name:latest is $got, built $want" >&2; exit 1; }
done
