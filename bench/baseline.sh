#!/usr/bin/env bash
# B1's baseline: what a workflow does with the plain docker CLI in `run:` steps.
# Login (token on stdin, private DOCKER_CONFIG), build, tag x3, push x3.
#
#   printf %s "$TOKEN" | bench/baseline.sh REGISTRY USER IMAGE CONTEXT TAG1 TAG2 TAG3
#
# BASELINE_BUILD_ARGS: extra `--build-arg K=V` words (the bed's base image).
# `docker buildx build --load` is what `docker build` runs on Docker >= 23; the bed's
# CLI is 20.10, where plain `docker build` would still be the classic builder.
set -euo pipefail
registry=$1 user=$2 image=$3 context=$4
shift 4
DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
# BASELINE_PLUGINS: the cli-plugins dir with the buildx the action runs (the bed's).
if [ -n "${BASELINE_PLUGINS:-}" ]; then ln -s "$BASELINE_PLUGINS" "$DOCKER_CONFIG/cli-plugins"; fi
docker login "$registry" --username "$user" --password-stdin >/dev/null
# shellcheck disable=SC2086  # BASELINE_BUILD_ARGS holds several words
docker buildx build --load --progress=plain --provenance=false ${BASELINE_BUILD_ARGS:-} \
    --tag "$image:$1" "$context"
first=$1
for tag in "${@:2}"; do
    docker tag "$image:$first" "$image:$tag"
done
for tag in "$@"; do
    docker push "$image:$tag"
done
