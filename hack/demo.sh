#!/usr/bin/env bash
# make demo: the operator end to end on this machine, without a cluster or container engine.
# Starts etcd + kube-apiserver (envtest-up), the Dfns sandbox and the manager as processes,
# creates the default connection, applies config/samples into namespace default, waits for them
# to be Ready, registers the invited DfnsUser through the sandbox's control, and shows what an
# app gets.
# `hack/demo.sh down` (make demo-down) stops everything it started and removes its state.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=$ROOT/bin/demo
KUBECONFIG_FILE=$STATE/kubeconfig
TIMEOUT=${DEMO_TIMEOUT:-180s}

step_no=0
step() { step_no=$((step_no + 1)); printf '\n[%d] %s\n' "$step_no" "$*"; }
fail() {
	printf '\ndemo: step %d failed: %s\n' "$step_no" "$*" >&2
	if [ -f "$STATE/manager.log" ]; then
		echo "--- last lines of $STATE/manager.log" >&2
		tail -n 20 "$STATE/manager.log" >&2
	fi
	exit 1
}

# stop ends every process the demo started; their logs stay in $STATE.
stop() {
	local name pid
	for name in manager sandbox envtest; do
		[ -f "$STATE/$name.pid" ] || continue
		pid=$(cat "$STATE/$name.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$STATE/$name.pid"
	done
}

# down stops everything and removes the demo's state.
down() {
	stop
	rm -rf "$STATE"
}

if [ "${1:-}" = down ]; then
	down
	echo "demo: stopped and cleaned up"
	exit 0
fi

# wait_for FILE PATTERN SECONDS PROCESS: until FILE has a line matching PATTERN.
wait_for() {
	local i
	for i in $(seq $(($3 * 5))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$(cat "$STATE/$4.pid")" 2>/dev/null || fail "$4 exited; see $1"
		sleep 0.2
	done
	fail "$4 not ready after $3 s; see $1"
}

start() { # start NAME LOG CMD...: run CMD in the background, remember its PID
	local name=$1 logf=$2
	shift 2
	"$@" >"$logf" 2>&1 &
	echo $! >"$STATE/$name.pid"
}

down
mkdir -p "$STATE"
trap 'echo; echo "demo: stopping (logs stay in $STATE; make demo-down removes them)"; stop' EXIT
trap 'exit 130' INT TERM

step "Building etcd, kube-apiserver and kubectl (first run: about 7 minutes) -> log $STATE/build.log"
ASSETS=$(WITH_KUBECTL=1 hack/setup-envtest.sh 2>"$STATE/build.log") || fail "see $STATE/build.log"
KUBECTL="$ASSETS/kubectl --kubeconfig $KUBECONFIG_FILE"

step "Building the manager, dfns-sandbox, envtest-up and the kubectl plugin"
go build -o bin/manager ./cmd >>"$STATE/build.log" 2>&1 || fail "see $STATE/build.log"
go build -o bin/dfns-sandbox ./cmd/dfns-sandbox >>"$STATE/build.log" 2>&1 || fail "see $STATE/build.log"
go build -o bin/envtest-up ./hack/envtest-up >>"$STATE/build.log" 2>&1 || fail "see $STATE/build.log"
go build -o bin/demo-app ./hack/demo-app >>"$STATE/build.log" 2>&1 || fail "see $STATE/build.log"
go build -o bin/kubectl-dfns ./cmd/kubectl-dfns >>"$STATE/build.log" 2>&1 || fail "see $STATE/build.log"

step "Starting etcd + kube-apiserver -> log $STATE/envtest.log"
KUBEBUILDER_ASSETS=$ASSETS start envtest "$STATE/envtest.log" bin/envtest-up --kubeconfig-out "$KUBECONFIG_FILE"
wait_for "$STATE/envtest.log" "control plane up" 60 envtest

step "Starting the Dfns sandbox -> log $STATE/sandbox.log"
start sandbox "$STATE/sandbox.log" bin/dfns-sandbox --listen 127.0.0.1:0 --bootstrap-dir "$STATE/bootstrap"
wait_for "$STATE/sandbox.log" "dfns-sandbox ready" 30 sandbox
grep "dfns-sandbox ready" "$STATE/sandbox.log"

step "Installing the CRDs"
$KUBECTL apply -k config/crd >/dev/null || fail "kubectl apply -k config/crd"
$KUBECTL wait --for=condition=Established crd --all --timeout=60s >/dev/null || fail "CRDs not established"

step "Creating namespace dfns-system and the dfns-credentials Secret from the sandbox's bootstrap"
$KUBECTL create namespace dfns-system >/dev/null
$KUBECTL apply -f "$STATE/bootstrap/dfns-credentials.yaml" >/dev/null || fail "applying dfns-credentials"

# make deploy and the Helm chart create this connection; here the manager runs as a process.
step "Creating ClusterDfnsConnection/default (mounted credentials) and opting namespace default in"
$KUBECTL apply -k config/connection >/dev/null || fail "kubectl apply -k config/connection"
$KUBECTL label namespace default access.dfns.io/enabled=true --overwrite >/dev/null ||
	fail "labelling namespace default"

step "Starting the manager (credentials from the bootstrap directory, as a mounted Secret) -> log $STATE/manager.log"
start manager "$STATE/manager.log" bin/manager --kubeconfig "$KUBECONFIG_FILE" \
	--dfns-credentials-dir "$STATE/bootstrap" --metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:0 \
	--sync-period 30s --leader-elect=false
wait_for "$STATE/manager.log" "Starting workers" 60 manager

step "Applying config/samples"
$KUBECTL apply -k config/samples || fail "kubectl apply -k config/samples"

step "Waiting for every sample to be Ready (timeout $TIMEOUT)"
kinds=$($KUBECTL api-resources --api-group=access.dfns.io -o name | paste -sd, -)
$KUBECTL wait --for=condition=Ready "$kinds" --all -A --timeout="$TIMEOUT" ||
	{ $KUBECTL get dfns -A -o wide; fail "samples not Ready; see $STATE/manager.log"; }

step "kubectl get dfns -A"
$KUBECTL get dfns -A

step "A person as code: DfnsUser alice is invited (Dfns e-mails her); Registered stays false until she registers"
$KUBECTL get dfnsusers -n default
user_id=$($KUBECTL get dfnsuser alice -n default -o jsonpath='{.status.userId}')
[ -n "$user_id" ] || fail "DfnsUser alice has no status.userId"

step "Alice registers, as she would by following the invitation (sandbox control POST /sandbox/users/$user_id/register)"
api_url=$(cat "$STATE/bootstrap/DFNS_API_URL")
curl -fsS --cacert "$STATE/bootstrap/ca.crt" -X POST "$api_url/sandbox/users/$user_id/register" >/dev/null ||
	fail "registering alice in the sandbox"
echo "waiting for the operator to see it at its next sync of alice (--sync-period 30s)"
$KUBECTL wait --for=jsonpath='{.status.registered}'=true dfnsuser/alice -n default --timeout=90s >/dev/null ||
	fail "alice's registration not seen; see $STATE/manager.log"
$KUBECTL get dfnsusers -n default
$KUBECTL get dfnspermissionassignment alice-treasury-approver -n default -o wide

step "Generated Secrets (keys only; values are secret)"
$KUBECTL get secrets -A -l app.kubernetes.io/managed-by=dfns-operator \
	-o go-template='{{range .items}}{{.metadata.namespace}}/{{.metadata.name}}:{{range $k, $v := .data}} {{$k}}{{end}}{{"\n"}}{{end}}'

step "kubectl dfns status dfnssa/payments-api (the kubectl plugin, README \"kubectl plugin\")"
bin/kubectl-dfns --kubeconfig "$KUBECONFIG_FILE" -n default status dfnssa/payments-api ||
	fail "kubectl dfns status"

step "Calling Dfns the way an app would: the Secret as environment, a signed request as the service account"
sa_secret=$($KUBECTL get dfnsserviceaccounts -A -o jsonpath='{.items[0].metadata.namespace}/{.items[0].status.secretName}')
env_args=()
for key in DFNS_API_URL DFNS_ORG_ID DFNS_AUTH_TOKEN DFNS_CRED_ID DFNS_PRIVATE_KEY; do
	val=$($KUBECTL get secret -n "${sa_secret%/*}" "${sa_secret#*/}" -o "jsonpath={.data.$key}" | base64 -d)
	env_args+=("$key=$val")
done
env "${env_args[@]}" DFNS_CA_FILE="$STATE/bootstrap/ca.crt" bin/demo-app || fail "the app call failed"

cat <<MSG

The demo is running. Try:
  export KUBECONFIG=$KUBECONFIG_FILE
  $ASSETS/kubectl get dfns -A
  $ASSETS/kubectl describe dfnsserviceaccount -A
  PATH=$ROOT/bin:\$PATH $ASSETS/kubectl dfns approvals -A
  $ASSETS/kubectl patch dfnsuser alice --type merge -p '{"spec":{"active":false}}'   # offboard alice
  $ASSETS/kubectl delete dfnsserviceaccount --all -A
Logs: $STATE/{manager,sandbox,envtest}.log
Ctrl-C (or 'make demo-down' from another shell) stops everything.
MSG
if [ -n "${DEMO_NO_WAIT:-}" ]; then exit 0; fi
while [ -f "$STATE/manager.pid" ] && kill -0 "$(cat "$STATE/manager.pid")" 2>/dev/null; do sleep 1; done
[ -d "$STATE" ] || { trap - EXIT; exit 0; } # stopped by make demo-down
fail "the manager exited; see $STATE/manager.log"
