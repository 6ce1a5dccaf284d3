#!/usr/bin/env bash
# Builds the envtest control plane (etcd, kube-apiserver, optionally kubectl) from the Go
# module proxy, because setup-envtest's download site is unreachable here. Prints only the
# assets directory on stdout; progress and build errors go to stderr. A binary is rebuilt only
# when it is missing or reports another version.
#
#   export KUBEBUILDER_ASSETS="$(hack/setup-envtest.sh)"
#   WITH_KUBECTL=1 hack/setup-envtest.sh
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
WITH_KUBECTL=${WITH_KUBECTL:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LOCALBIN:-$ROOT/bin}
ASSETS=$BIN/k8s/$K8S_VERSION
# Build modules live outside bin/k8s: the test suites take the first directory under bin/k8s.
WORK=$BIN/k8s-build
STAGING_VERSION=v0.${K8S_VERSION#*.}

export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
log() { echo "setup-envtest: $*" >&2; }

# have BINARY PATTERN: true when BINARY exists and its --version output contains PATTERN.
# The output is captured first: `cmd | grep -q` under pipefail fails on SIGPIPE.
have() {
	local out
	[ -x "$1" ] || return 1
	out=$("$1" --version 2>/dev/null || "$1" version --client 2>/dev/null || true)
	[[ "$out" == *"$2"* ]]
}

k8s_module() {
	local dir=$WORK/kubernetes-$K8S_VERSION
	[ -f "$dir/.complete" ] && { echo "$dir"; return; }
	log "preparing k8s.io/kubernetes v$K8S_VERSION build module"
	rm -rf "$dir" && mkdir -p "$dir"
	(
		cd "$dir"
		go mod init envtest-build >/dev/null 2>&1
		local json
		json=$(mktemp)
		if ! go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >"$json"; then
			cat "$json" >&2
			exit 1
		fi
		local gomod
		gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' "$json")
		rm -f "$json"
		# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
		# ./staging paths that only apply in its own main module: pin them to the release.
		{
			echo "replace ("
			sed -n "s#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 $STAGING_VERSION#p" "$gomod"
			echo ")"
		} >>go.mod
		go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >&2
	)
	touch "$dir/.complete"
	echo "$dir"
}

etcd_module() {
	local dir=$WORK/etcd-$ETCD_VERSION
	[ -f "$dir/.complete" ] && { echo "$dir"; return; }
	log "preparing etcd v$ETCD_VERSION build module"
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && go mod init envtest-build >/dev/null 2>&1 && go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2)
	touch "$dir/.complete"
	echo "$dir"
}

k8s_ldflags() {
	local minor=${K8S_VERSION#*.}
	minor=${minor%%.*}
	local f="-s -w" pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f="$f -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=$minor"
		f="$f -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$f"
}

build() { # build MODULE_DIR PACKAGE OUTPUT LDFLAGS
	log "building $(basename "$3") (a cold build of kube-apiserver takes about 5 minutes on 2 cores)"
	(cd "$1" && go build -trimpath -tags=selinux,notest,grpcnotrace ${ENVTEST_GOFLAGS:-} -ldflags "$4" -o "$3" "$2" >&2)
}

mkdir -p "$ASSETS" "$WORK"
if ! have "$ASSETS/etcd" "etcd Version: $ETCD_VERSION"; then
	build "$(etcd_module)" go.etcd.io/etcd/server/v3 "$ASSETS/etcd" "-s -w"
fi
if ! have "$ASSETS/kube-apiserver" "Kubernetes v$K8S_VERSION"; then
	build "$(k8s_module)" k8s.io/kubernetes/cmd/kube-apiserver "$ASSETS/kube-apiserver" "$(k8s_ldflags)"
fi
if [ "$WITH_KUBECTL" = 1 ] && ! have "$ASSETS/kubectl" "v$K8S_VERSION"; then
	build "$(k8s_module)" k8s.io/kubernetes/cmd/kubectl "$ASSETS/kubectl" "$(k8s_ldflags)"
fi
echo "$ASSETS"
