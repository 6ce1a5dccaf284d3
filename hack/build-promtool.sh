#!/usr/bin/env bash
# Builds promtool from the Go module proxy (no download site is reachable here), for the test
# that runs `promtool check rules` and `promtool test rules` on config/prometheus/alerts.yaml.
#
#   hack/build-promtool.sh v0.316.0 bin/promtool-v0.316.0
#
# v0.316.0 is the module version of Prometheus 3.x's code. The remove_all_sd tag leaves out the
# cloud service-discovery plugins (AWS, Azure, GCE, ...), which rule checks never use and which
# would more than double the build. It is bounded by PROMTOOL_BUILD_TIMEOUT (default 40m).
set -euo pipefail
version=$1 out=$(realpath -m "$2")
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$(dirname "$out")"
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
echo "build-promtool: building promtool $version" >&2
start=$SECONDS
GOBIN=$gobin timeout "${PROMTOOL_BUILD_TIMEOUT:-40m}" \
	go install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/promtool@$version"
mv "$gobin/promtool" "$out"
echo "build-promtool: built in $((SECONDS - start))s" >&2
