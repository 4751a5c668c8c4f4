#!/usr/bin/env bash
# B6's baseline: a two-platform publish with the plain docker CLI.
#
#   printf %s "$TOKEN" | bench/baseline_platforms.sh REGISTRY USER IMAGE:TAG CONTEXT PLATFORMS STORE
#
# STORE=containerd: one `docker buildx build --platform A,B --push` (the daemon's BuildKit
# pushes the index). STORE=classic: the docker driver cannot build several platforms at
# once, so what a user does by hand there: one `--push` per platform, then
# `docker buildx imagetools create` over the platform digests.
set -euo pipefail
registry=$1 user=$2 ref=$3 context=$4 platforms=$5 store=$6
DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG BUILDX_NO_DEFAULT_ATTESTATIONS=1
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
if [ -n "${BASELINE_PLUGINS:-}" ]; then ln -s "$BASELINE_PLUGINS" "$DOCKER_CONFIG/cli-plugins"; fi
docker login "$registry" --username "$user" --password-stdin >/dev/null
if [ "$store" = containerd ]; then
    docker buildx build --push --progress=plain --provenance=false --platform "$platforms" \
        --tag "$ref" "$context"
    exit 0
fi
digests=()
for platform in ${platforms//,/ }; do
    docker buildx build --push --progress=plain --provenance=false --platform "$platform" \
        --metadata-file "$DOCKER_CONFIG/meta.json" --tag "$ref" "$context"
    digests+=("${ref%:*}@$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest.Digest}}' | tr -d '"')")
done
docker buildx imagetools create --tag "$ref" "${digests[@]}"
