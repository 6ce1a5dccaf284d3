# dfns-operator: see README.md. `make help` lists the targets.

IMG ?= ghcr.io/dfns-operator/dfns-operator:latest

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tools: controller-gen and ginkgo are `tool` directives in go.mod (built by the module proxy,
## cached by Go); the envtest control plane and golangci-lint are built from source by hack/.
CONTROLLER_GEN ?= go tool controller-gen
GINKGO ?= go tool ginkgo
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.6.16
GOLANGCI_LINT_VERSION ?= $(shell sed -n 's/^version: *//p' .custom-gcl.yml)
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
FUZZTIME ?= 10s
HELM_VERSION ?= v3.22.0
HELM = $(LOCALBIN)/helm-$(HELM_VERSION)
## promtool: the module version of Prometheus 3.x (github.com/prometheus/prometheus v0.316.0).
PROMTOOL_VERSION ?= v0.316.0
PROMTOOL = $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)

ENVTEST_ASSETS = K8S_VERSION=$(ENVTEST_K8S_VERSION) ETCD_VERSION=$(ENVTEST_ETCD_VERSION) LOCALBIN=$(LOCALBIN) hack/setup-envtest.sh

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRDs and the manager's ClusterRole (and the chart's CRD templates and role copy), and docs/api.md.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	@hack/chart-crds.sh config/crd/bases dist/chart/templates/crds && cp config/rbac/role.yaml dist/chart/files/role.yaml
	@cp config/prometheus/alerts.yaml config/grafana/dfns-operator.json dist/chart/files/
	go run ./hack/api-docs config/crd/bases docs/api.md

.PHONY: api-docs
api-docs: ## Write docs/api.md, the API reference, from the CRDs.
	go run ./hack/api-docs config/crd/bases docs/api.md

.PHONY: generate
generate: ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (the e2e, chaos and bench suites too).
	go vet ./...
	go vet -tags e2e,chaos,bench ./test/...

.PHONY: setup-envtest
setup-envtest: ## Build etcd, kube-apiserver and kubectl into bin/k8s (first run: about 7 minutes).
	@WITH_KUBECTL=1 $(ENVTEST_ASSETS)

.PHONY: sdk-deps
sdk-deps: ## Install the pinned official Dfns TypeScript SDK for test/sdk (npm ci).
	@test -d test/sdk/node_modules/@dfns/sdk-keysigner || (cd test/sdk && npm ci --no-audit --no-fund)

.PHONY: test
test: manifests generate fmt vet sdk-deps $(HELM) $(PROMTOOL) ## Run the tests (envtest control plane + Dfns sandbox + official TS SDK + rendered packaging + promtool on the alerts).
	@assets="$$(WITH_KUBECTL=1 $(ENVTEST_ASSETS))"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" KUBECTL="$$assets/kubectl" HELM="$(HELM)" PROMTOOL="$(PROMTOOL)" \
		go test $$(go list ./... | grep -v /test/e2e) -coverprofile cover.out; \
	echo "The controller suite again, against a strict sandbox (docs/dfns-compatibility.md):"; \
	KUBEBUILDER_ASSETS="$$assets" SANDBOX_STRICT=all go test ./internal/controller/ -count=1

.PHONY: test-e2e
test-e2e: ## Run the end-to-end tests: real etcd, kube-apiserver, dfns-sandbox, manager and kubectl processes (SANDBOX_FLAGS=--strict for the strict sandbox).
	SANDBOX_FLAGS="$(SANDBOX_FLAGS)" go test -tags e2e ./test/e2e/ -count=1 -timeout 15m -v -ginkgo.v

.PHONY: test-chaos
test-chaos: ## Kill the manager 10 times amid 20% injected Dfns faults; check nothing is lost (CHAOS_N, CHAOS_KILLS, CHAOS_SEED).
	SANDBOX_FLAGS="$(SANDBOX_FLAGS)" go test -tags chaos ./test/chaos/ -count=1 -timeout 30m -v

.PHONY: bench
bench: ## Measure convergence, Dfns calls, API-server writes, latency and memory (BENCH_N; results in bench/results.json, or bench/results-<N>.json).
	go test -tags bench ./test/bench/ -count=1 -timeout 120m -v

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s).
	@FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (with the logcheck plugin).
	$(GOLANGCI_LINT) run

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply its fixes.
	$(GOLANGCI_LINT) run --fix

$(HELM): | $(LOCALBIN)
	hack/build-helm.sh $(HELM_VERSION) $(HELM)

$(PROMTOOL): | $(LOCALBIN)
	hack/build-promtool.sh $(PROMTOOL_VERSION) $(PROMTOOL)

$(GOLANGCI_LINT): | $(LOCALBIN)
	hack/build-golangci-lint.sh $(GOLANGCI_LINT_VERSION) $(GOLANGCI_LINT)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager, dfns-sandbox and kubectl-dfns binaries into bin/.
	go build -o $(LOCALBIN)/manager ./cmd
	go build -o $(LOCALBIN)/dfns-sandbox ./cmd/dfns-sandbox
	go build -o $(LOCALBIN)/kubectl-dfns ./cmd/kubectl-dfns

.PHONY: install-plugin
install-plugin: | $(LOCALBIN) ## Build the kubectl plugin into bin/kubectl-dfns: with bin/ in PATH, `kubectl dfns` runs it.
	go build -o $(LOCALBIN)/kubectl-dfns ./cmd/kubectl-dfns

.PHONY: plugin-dist
plugin-dist: ## Build the plugin's release archives and krew manifest into dist/plugin (VERSION=v0.1.0).
	@test -n "$(VERSION)" || { echo "usage: make plugin-dist VERSION=v0.1.0"; exit 1; }
	hack/krew/release.sh $(VERSION) dist/plugin

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd --leader-elect=false

.PHONY: demo
demo: ## Run the operator end to end on this machine: control plane, Dfns sandbox, manager, samples.
	hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop everything `make demo` started and remove its state.
	hack/demo.sh down

.PHONY: docker-build
docker-build: ## Build the manager image (needs a container engine).
	docker build -t $(IMG) .

.PHONY: build-installer
build-installer: manifests generate ## Render CRDs and the deployment into dist/install.yaml.
	mkdir -p dist
	$$(WITH_KUBECTL=1 $(ENVTEST_ASSETS))/kubectl kustomize config/default > dist/install.yaml

##@ Deployment

KUBECTL ?= $$(WITH_KUBECTL=1 $(ENVTEST_ASSETS))/kubectl

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator to the cluster of the current kubeconfig.
	$(KUBECTL) apply -k config/crd
	$(KUBECTL) wait --for=condition=Established -f config/crd/bases --timeout=60s
	$(KUBECTL) apply -k config/default

.PHONY: undeploy
undeploy: ## Remove the operator from the cluster of the current kubeconfig.
	$(KUBECTL) delete --ignore-not-found -k config/default
