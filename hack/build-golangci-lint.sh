#!/usr/bin/env bash
# Builds golangci-lint with the logcheck module plugin from the Go module proxy.
# `golangci-lint custom` would git-clone from the internet; this does the same offline:
# take the golangci-lint module's source, add the plugin's blank import, build.
#
#   hack/build-golangci-lint.sh v2.12.2 bin/golangci-lint-v2.12.2
set -euo pipefail
version=$1 out=$(realpath -m "$2")
plugin_version=$(sed -n 's/^ *version: *\(v[0-9.]*\)$/\1/p' "$(dirname "$0")/../.custom-gcl.yml" | tail -1)
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod

json=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$json" "$work"' EXIT
if ! go mod download -json "github.com/golangci/golangci-lint/v2@$version" >"$json"; then
	cat "$json" >&2
	exit 1
fi
src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$json")
cp -r "$src/." "$work" && chmod -R u+w "$work"
cat >"$work/cmd/golangci-lint/plugins.go" <<'GO'
package main

import _ "sigs.k8s.io/logtools/logcheck/gclplugin"
GO
echo "build-golangci-lint: building golangci-lint $version with logcheck $plugin_version" >&2
(cd "$work" && go get "sigs.k8s.io/logtools@$plugin_version" >&2 && go build -o "$out" ./cmd/golangci-lint)
