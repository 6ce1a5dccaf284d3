#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy (no download site is reachable here), for the
# test that renders dist/chart with `helm template` and `helm lint`.
#
#   hack/build-helm.sh v3.22.0 bin/helm-v3.22.0
set -euo pipefail
version=$1 out=$(realpath -m "$2")
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$(dirname "$out")"
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
echo "build-helm: building helm $version" >&2
GOBIN=$gobin go install "helm.sh/helm/v3/cmd/helm@$version"
mv "$gobin/helm" "$out"
