/*
Copyright 2026 The dfns-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// The tests run the commands against a real kube-apiserver (envtest) holding resources with
// the status the operator would write, their Secrets and events; no manager runs.

var (
	testEnv *envtest.Environment
	cfg     *rest.Config
	k8s     client.Client
	ctx     = context.Background()
	// now is the time the fixtures are written at and the plugin reads them at.
	now time.Time
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		testEnv.BinaryAssetsDirectory = envtestBinaryDir()
	}
	var err error
	if cfg, err = testEnv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	now = time.Now().UTC().Truncate(time.Second)
	code := m.Run()
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// envtestBinaryDir finds the control plane hack/setup-envtest.sh builds, for runs without
// KUBEBUILDER_ASSETS.
func envtestBinaryDir() string {
	base := filepath.Join("..", "..", "bin", "k8s")
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.IsDir() {
			return filepath.Join(base, e.Name())
		}
	}
	return ""
}

// testClient is a client of the test API server.
func testClient(t *testing.T) client.Client {
	t.Helper()
	if k8s != nil {
		return k8s
	}
	scheme := runtime.NewScheme()
	must(t, clientgoscheme.AddToScheme(scheme))
	must(t, v1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	must(t, err)
	k8s = c
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run runs one of the plugin's functions in namespace and returns what it wrote.
func run(t *testing.T, namespace string, f func(p *plugin) error) (string, error) {
	t.Helper()
	var out bytes.Buffer
	p, err := newPlugin(cfg, namespace, &out)
	must(t, err)
	p.now = now
	err = f(p)
	return out.String(), err
}

func cond(typ string, status metav1.ConditionStatus, reason, message string, age time.Duration) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(now.Add(-age))}
}

// healthy are the conditions of a resource that is Ready and Synced.
func healthy() []metav1.Condition {
	return []metav1.Condition{
		cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAvailable, "exists in Dfns", time.Hour),
		cond(v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess, "", time.Minute),
	}
}

// create makes obj and then writes the status setStatus puts back (a create drops status).
func create(t *testing.T, obj client.Object, setStatus func()) {
	t.Helper()
	c := testClient(t)
	must(t, c.Create(ctx, obj))
	if setStatus != nil {
		setStatus()
		must(t, c.Status().Update(ctx, obj))
	}
}

// newNamespace makes a namespace of its own for a test.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	must(t, testClient(t).Create(ctx, ns))
	return ns.Name
}

// secretValues are the values of the service account's Secret: none may ever be printed.
var secretValues = map[string]string{
	"DFNS_API_URL":     "https://api.dfns.example",
	"DFNS_ORG_ID":      "or-29af3-unique-org-value",
	"DFNS_AUTH_TOKEN":  "eyJhbGciOiJFUzI1NiJ9.secret-token-value-never-shown",
	"DFNS_CRED_ID":     "Y2-credential-id-value-never-shown",
	"DFNS_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecretkeymaterial\n-----END PRIVATE KEY-----\n",
}

// fixture is a namespace as the operator leaves it: a service account with its permission,
// Secret and events, an assignment by name and one by ID (held for approval), and a policy
// naming the service account as approver and filtering on the permission.
type fixture struct {
	ns string
	sa *v1alpha1.DfnsServiceAccount
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	c := testClient(t)
	ensureDefaultConnection(t)
	ns := newNamespace(t, "team")
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

	for name, id := range map[string]string{"payments": "pm-pay", "audit": "pm-audit"} {
		p := &v1alpha1.DfnsPermission{ObjectMeta: meta(name),
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Wallets:Read"}}}
		create(t, p, func() {
			p.Status = v1alpha1.DfnsPermissionStatus{PermissionID: id,
				ManagedStatus: v1alpha1.ManagedStatus{Conditions: healthy(), ObservedGeneration: 1}}
		})
	}

	sa := &v1alpha1.DfnsServiceAccount{ObjectMeta: meta("payments-api"),
		Spec: v1alpha1.DfnsServiceAccountSpec{PermissionRef: v1alpha1.PermissionRef{Name: "payments"},
			DaysValid: ptr.To[int32](90)}}
	create(t, sa, func() {
		sa.Status = v1alpha1.DfnsServiceAccountStatus{
			ServiceAccountID: "us-payapi",
			TokenStatus: v1alpha1.TokenStatus{TokenID: "to-tok1", SecretName: "payments-api",
				DfnsName:  ns + "/payments-api.k3x9q2",
				ExpiresAt: ptr.To(metav1.NewTime(now.Add(90 * 24 * time.Hour))),
				RenewAt:   ptr.To(metav1.NewTime(now.Add(60 * 24 * time.Hour))),
				// The fingerprint is a hash, and status, not the Secret: it may be shown.
				SecretFingerprint: "sha256:0f1e"},
			ManagedStatus: v1alpha1.ManagedStatus{Conditions: healthy(), ObservedGeneration: 1,
				Previous: []v1alpha1.PreviousObject{{ID: "us-old", RetireAt: metav1.NewTime(now.Add(40 * time.Minute))}}},
		}
	})
	data := map[string][]byte{}
	for k, v := range secretValues {
		data[k] = []byte(v)
	}
	must(t, c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "payments-api", Namespace: ns,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindServiceAccount,
				Name: sa.Name, UID: sa.UID, Controller: ptr.To(true)}}},
		Data: data}))

	byName := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: meta("payments-api-audit"),
		Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{Name: "audit"},
			IdentityRef: &v1alpha1.IdentityRef{Kind: kindServiceAccount, Name: "payments-api"}}}
	create(t, byName, func() {
		byName.Status = v1alpha1.DfnsPermissionAssignmentStatus{AssignmentID: "as-1", PermissionID: "pm-audit",
			IdentityID: "us-payapi", ManagedStatus: v1alpha1.ManagedStatus{Conditions: healthy(), ObservedGeneration: 1}}
	})
	byID := &v1alpha1.DfnsPermissionAssignment{ObjectMeta: meta("by-id"),
		Spec: v1alpha1.DfnsPermissionAssignmentSpec{PermissionRef: v1alpha1.PermissionRef{ID: "pm-audit"},
			IdentityID: "us-payapi"}}
	create(t, byID, func() {
		byID.Status = v1alpha1.DfnsPermissionAssignmentStatus{ManagedStatus: v1alpha1.ManagedStatus{
			ObservedGeneration: 1,
			PendingChangeRequest: &v1alpha1.ChangeRequestStatus{ID: "cr-assign1", ApprovalID: "ap-assign1",
				Status: changePending, Operation: "Create", Generation: 1},
			Conditions: []metav1.Condition{
				cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonCreating, "not created yet", 3*time.Hour),
				cond(v1alpha1.ConditionSynced, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval,
					"change request cr-assign1 waits for approval ap-assign1 in Dfns", 3*time.Hour),
			}}}
	})

	pol := &v1alpha1.DfnsPolicy{ObjectMeta: meta("guard-permissions"), Spec: v1alpha1.DfnsPolicySpec{
		ActivityKind: "Permissions:Modify",
		Rule:         v1alpha1.PolicyRule{Kind: "AlwaysTrigger"},
		Action: v1alpha1.PolicyAction{Kind: "RequestApproval", ApprovalGroups: []v1alpha1.ApprovalGroup{{
			Quorum: 1, Approvers: v1alpha1.Approvers{UserID: &v1alpha1.IDFilter{In: []string{"us-payapi", "us-human", "us-bob"}},
				UserRefs: []v1alpha1.UserRef{{Name: "alice"}}}}}},
		Filters: &v1alpha1.PolicyFilters{PermissionID: &v1alpha1.IDFilter{In: []string{"pm-pay"}}},
	}}
	create(t, pol, func() {
		pol.Status = v1alpha1.DfnsPolicyStatus{PolicyID: "plc-1",
			ManagedStatus: v1alpha1.ManagedStatus{Conditions: healthy(), ObservedGeneration: 1}}
	})

	for name, id := range map[string]string{"alice": "us-alice", "bob": "us-bob"} {
		u := &v1alpha1.DfnsUser{ObjectMeta: meta(name), Spec: v1alpha1.DfnsUserSpec{Email: name + "@example.com"}}
		create(t, u, func() {
			u.Status = v1alpha1.DfnsUserStatus{UserID: id, Registered: ptr.To(name == "alice"), Active: ptr.To(true),
				ManagedStatus: v1alpha1.ManagedStatus{Conditions: healthy(), ObservedGeneration: 1}}
		})
	}

	// Events as both APIs record them: the manager writes events.k8s.io/v1 ones.
	must(t, c.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "payments-api-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: kindServiceAccount, APIVersion: v1alpha1.GroupVersion.String(),
			Namespace: ns, Name: sa.Name, UID: sa.UID},
		Type: corev1.EventTypeNormal, Reason: "Created", Message: "created Dfns service account us-payapi",
		FirstTimestamp: metav1.NewTime(now.Add(-2 * time.Hour)), LastTimestamp: metav1.NewTime(now.Add(-2 * time.Hour)),
		Count:  1,
		Source: corev1.EventSource{Component: "dfns-operator"},
	}))
	must(t, c.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "payments-api-", Namespace: ns},
		Regarding: corev1.ObjectReference{Kind: kindServiceAccount, APIVersion: v1alpha1.GroupVersion.String(),
			Namespace: ns, Name: sa.Name, UID: sa.UID},
		EventTime: metav1.NewMicroTime(now.Add(-10 * time.Minute)), ReportingController: "dfns-operator",
		ReportingInstance: "dfns-operator-0", Action: "Rotated", Reason: "Rotated", Type: corev1.EventTypeNormal,
		Note: "minted us-payapi to replace us-old",
	}))
	// An event about another resource, which the service account's status does not show.
	must(t, c.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "payments-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: kindPermission, APIVersion: v1alpha1.GroupVersion.String(),
			Namespace: ns, Name: "payments"},
		Type: corev1.EventTypeWarning, Reason: "SomethingElse", Message: "about the permission",
		FirstTimestamp: metav1.NewTime(now), LastTimestamp: metav1.NewTime(now), Count: 1,
	}))
	return fixture{ns: ns, sa: sa}
}

// ensureDefaultConnection makes ClusterDfnsConnection/default, Ready, once.
func ensureDefaultConnection(t *testing.T) {
	t.Helper()
	c := testClient(t)
	var existing v1alpha1.ClusterDfnsConnection
	if c.Get(ctx, client.ObjectKey{Name: v1alpha1.DefaultConnectionName}, &existing) == nil {
		return
	}
	conn := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultConnectionName},
		Spec: v1alpha1.ClusterDfnsConnectionSpec{
			ConnectionSpec: v1alpha1.ConnectionSpec{
				Credentials: v1alpha1.ConnectionCredentials{Mounted: &v1alpha1.MountedCredentials{}}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"access.dfns.io/enabled": "true"}},
		}}
	create(t, conn, func() {
		conn.Status = v1alpha1.ConnectionStatus{OrgID: "or-test", Identity: "bot@example.com",
			LastCheckedAt: ptr.To(metav1.NewTime(now.Add(-2 * time.Minute))),
			Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAvailable,
				"logged in", time.Hour)}}
	})
}

// expectInOrder checks that out holds each part, in this order.
func expectInOrder(t *testing.T, out string, parts ...string) {
	t.Helper()
	left := out
	for _, p := range parts {
		i := strings.Index(left, p)
		if i < 0 {
			t.Errorf("output lacks %q (in this order); output:\n%s", p, out)
			return
		}
		left = left[i+len(p):]
	}
}

// lineWith returns the line of out that holds all parts, or "".
func lineWith(out string, parts ...string) string {
	for l := range strings.SplitSeq(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return l
		}
	}
	return ""
}

// noSecretValues fails if out holds any Secret value, or any line of one.
func noSecretValues(t *testing.T, out string) {
	t.Helper()
	for k, v := range secretValues {
		for _, piece := range append(strings.Split(strings.TrimSpace(v), "\n"), v) {
			if len(piece) > 8 && strings.Contains(out, piece) {
				t.Errorf("the value of %s (%q) is in the output:\n%s", k, piece, out)
			}
		}
	}
}

func TestStatusServiceAccount(t *testing.T) {
	f := newFixture(t)
	out, err := run(t, f.ns, func(p *plugin) error { return p.status(ctx, managedKinds[0], "payments-api") })
	must(t, err)
	t.Logf("kubectl dfns status dfnssa/payments-api:\n%s", out)
	noSecretValues(t, out)

	expectInOrder(t, out,
		"DfnsServiceAccount "+f.ns+"/payments-api",
		"Dfns ID:", "us-payapi",
		"Connection:", "ClusterDfnsConnection/default",
		"Deletion policy:", "Delete",
		"Permission:", "DfnsPermission/payments",
		"Dfns name:", f.ns+"/payments-api.k3x9q2",
		"Token ID:", "to-tok1",
		"Token expires:", now.Add(90*24*time.Hour).Format(time.RFC3339), "(in 90d)",
		"Token renews:", "(in 60d)",
		"Superseded:", "us-old", "(in 40m)",
		"Conditions:", "Ready", "True", "Available", "exists in Dfns",
		"Synced", "True", "ReconcileSuccess",
		"Secret "+f.ns+"/payments-api (written by it):",
		"Keys:", "DFNS_API_URL, DFNS_AUTH_TOKEN, DFNS_CRED_ID, DFNS_ORG_ID, DFNS_PRIVATE_KEY (values not shown)",
		"Owned by it:", "yes",
		"Connection ClusterDfnsConnection/default:", "Ready:", "True, Available: logged in", "Org:", "or-test",
		"Acts as:", "bot@example.com",
		"Related resources",
		"DfnsServiceAccount/payments-api",
		"Events:", "Created", "created Dfns service account us-payapi", "Rotated", "minted us-payapi to replace us-old",
	)
	for _, want := range [][]string{
		{"├─ ClusterDfnsConnection/default", "→ connectionRef", "True", "Available"},
		{"DfnsPermission/payments", "→ permissionRef", "True", "True", "Available"},
		{"Secret/payments-api", "→ secret", "5 keys"},
		{"DfnsPermissionAssignment/payments-api-audit", "← identityRef", "True", "True"},
		{"│  └─ DfnsPermission/audit", "→ permissionRef"},
		{"DfnsPermissionAssignment/by-id", "← identityId", "False", "False", "AwaitingApproval: change request cr-assign1"},
		{"└─ DfnsPolicy/guard-permissions", "← approver"},
	} {
		if lineWith(out, want...) == "" {
			t.Errorf("the tree lacks a line with %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SomethingElse") {
		t.Errorf("status shows an event about another resource:\n%s", out)
	}
}

func TestStatusOfEachKind(t *testing.T) {
	f := newFixture(t)
	cases := map[string]struct {
		reason string
		kind   string
		name   string
		want   [][]string // lines that must be there, each as parts of one line
	}{
		"AssignmentByID": {
			reason: "references by Dfns ID are resolved against the IDs status records, and a held change shows its approval",
			kind:   "dfnsassign", name: "by-id",
			want: [][]string{
				{"Change request:", "cr-assign1, approval ap-assign1, Create Pending"},
				{"Synced", "False", "AwaitingApproval", "change request cr-assign1 waits for approval ap-assign1 in Dfns"},
				{"├─ DfnsPermission/audit", "→ permissionRef"},
				{"DfnsServiceAccount/payments-api", "→ identityId"},
				{"DfnsPermission/payments", "→ permissionRef"}, // the service account's, one level down
			},
		},
		"Permission": {
			reason: "a permission is referenced by service accounts, assignments and policy filters",
			kind:   "DfnsPermission", name: "payments",
			want: [][]string{
				{"Operations:", "Wallets:Read"},
				{"DfnsServiceAccount/payments-api", "← permissionRef"},
				{"DfnsPolicy/guard-permissions", "← filters.permissionId"},
			},
		},
		"Policy": {
			reason: "a policy's approvers resolve to service accounts where one records the ID, else stay Dfns IDs",
			kind:   "dfnspolicies.access.dfns.io", name: "guard-permissions",
			want: [][]string{
				{"Activity:", "Permissions:Modify"},
				{"DfnsServiceAccount/payments-api", "→ approver"},
				{"Dfns us-human", "→ approver", "no DfnsServiceAccount in " + f.ns + " records this ID"},
				{"DfnsUser/bob", "→ approver"},
				{"DfnsUser/alice", "→ approver"},
				{"DfnsPermission/payments", "→ filters.permissionId"},
			},
		},
		"User": {
			reason: "a person shows their e-mail and registration, and the policies naming them by resource or by ID",
			kind:   "dfnsuser", name: "alice",
			want: [][]string{
				{"Email:", "alice@example.com"},
				{"Registered:", "true"},
				{"DfnsPolicy/guard-permissions", "← approver"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := resolveKind(tc.kind)
			must(t, err)
			out, err := run(t, f.ns, func(p *plugin) error { return p.status(ctx, k, tc.name) })
			must(t, err)
			noSecretValues(t, out)
			for _, want := range tc.want {
				if lineWith(out, want...) == "" {
					t.Errorf("%s\nno line holds %q:\n%s", tc.reason, want, out)
				}
			}
		})
	}
}

// TestStatusConnection shows a connection: its credentials, whom it serves, its Secret's keys
// and what acts through it, listed (not followed) up to maxReferrers, with their namespaces.
func TestStatusConnection(t *testing.T) {
	c := testClient(t)
	ns := newNamespace(t, "conn")
	conn := &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: v1alpha1.ClusterDfnsConnectionSpec{
			ConnectionSpec: v1alpha1.ConnectionSpec{NamePrefix: "cluster-1",
				Credentials: v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: "team-creds"}}},
			Namespaces: []string{ns},
			Limits: &v1alpha1.ConnectionLimits{Kinds: []v1alpha1.ManagedKind{kindPermission},
				Operations: []string{"Wallets:*"}},
		}}
	create(t, conn, func() {
		conn.Status = v1alpha1.ConnectionStatus{Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady,
			metav1.ConditionFalse, v1alpha1.ReasonCredentialsUnavailable, "Secret team-creds has no DFNS_ORG_ID", time.Minute)}}
	})
	operatorNS := newNamespace(t, "operator")
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "team-creds", Namespace: operatorNS},
		Data: map[string][]byte{"DFNS_AUTH_TOKEN": []byte(secretValues["DFNS_AUTH_TOKEN"])}}))
	const n = maxReferrers + 2
	for i := range n {
		must(t, c.Create(ctx, &v1alpha1.DfnsPermission{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%02d", i), Namespace: ns},
			Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Wallets:Read"},
				ConnectionRef: &v1alpha1.ConnectionReference{Kind: v1alpha1.KindClusterDfnsConnection, Name: conn.Name}}}))
	}

	out, err := run(t, "default", func(p *plugin) error {
		p.operatorNamespace = operatorNS
		return p.status(ctx, connectionKinds[1], conn.Name)
	})
	must(t, err)
	noSecretValues(t, out)
	for _, want := range [][]string{
		{"ClusterDfnsConnection " + conn.Name},
		{"Credentials:", "Secret team-creds"},
		{"Name prefix:", "cluster-1"},
		{"Serves:", ns},
		{"Limits:", "kinds DfnsPermission; operations Wallets:*"},
		{"Ready", "False", "CredentialsUnavailable", "Secret team-creds has no DFNS_ORG_ID"},
		{"Secret " + operatorNS + "/team-creds (its credentials):"},
		{"Keys:", "DFNS_AUTH_TOKEN (values not shown)"},
		{"ClusterDfnsConnection/" + conn.Name, "False", "CredentialsUnavailable"},
		{"Secret/team-creds (namespace " + operatorNS + ")", "→ credentials", "1 key"},
		{"├─ DfnsPermission/p00 (in " + ns + ")", "← connectionRef", "no status yet"},
		{"DfnsPermission/p19 (in " + ns + ")", "← connectionRef"},
		{"└─ … and 2 more"},
	} {
		if lineWith(out, want...) == "" {
			t.Errorf("no line holds %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DfnsPermission/p20") {
		t.Errorf("status lists more than %d resources using the connection:\n%s", maxReferrers, out)
	}
}

func TestStatusMissing(t *testing.T) {
	c := testClient(t)
	ns := newNamespace(t, "missing")
	_, err := run(t, ns, func(p *plugin) error { return p.status(ctx, managedKinds[0], "nope") })
	if err == nil || !strings.Contains(err.Error(), `DfnsServiceAccount "nope" not found in namespace `+ns) {
		t.Errorf("status of a missing resource: got %v, want a not-found error naming it", err)
	}

	// A webhook whose connection and Secret do not exist yet.
	wh := &v1alpha1.DfnsWebhook{ObjectMeta: metav1.ObjectMeta{Name: "hooks", Namespace: ns},
		Spec: v1alpha1.DfnsWebhookSpec{URL: "https://hooks.example/dfns", Events: []v1alpha1.WebhookEvent{"*"},
			ConnectionRef: &v1alpha1.ConnectionReference{Kind: v1alpha1.KindDfnsConnection, Name: "team"}}}
	must(t, c.Create(ctx, wh))
	out, err := run(t, ns, func(p *plugin) error { return p.status(ctx, managedKinds[4], "hooks") })
	must(t, err)
	for _, want := range [][]string{
		{"Connection:", "DfnsConnection/team"},
		{"Conditions:"}, {"none yet: the operator has not reconciled it"},
		{"Secret " + ns + "/hooks (written by it):"}, {"  not found"},
		{"Connection DfnsConnection/team:"}, {"not found: nothing is done in Dfns until it exists"},
		{"DfnsConnection/team", "→ connectionRef", "not found"},
		{"Secret/hooks", "→ secret", "not found"},
		{"Events:"}, {"none"},
	} {
		if lineWith(out, want...) == "" {
			t.Errorf("no line holds %q:\n%s", want, out)
		}
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	c := testClient(t)
	out, err := run(t, f.ns, func(p *plugin) error { return p.rotate(ctx, managedKinds[0], "payments-api") })
	must(t, err)
	var sa v1alpha1.DfnsServiceAccount
	must(t, c.Get(ctx, client.ObjectKeyFromObject(f.sa), &sa))
	first := sa.Annotations[v1alpha1.AnnotationRotate]
	if first != now.Format(time.RFC3339Nano) {
		t.Errorf("rotate set %s=%q, want the time of the request %q", v1alpha1.AnnotationRotate, first,
			now.Format(time.RFC3339Nano))
	}
	if !strings.Contains(out, "dfnsserviceaccounts.access.dfns.io/payments-api: rotation requested") {
		t.Errorf("rotate did not say what it did:\n%s", out)
	}

	// Asked again before the operator acted (status.rotateRequest is still empty), at the same
	// instant: the value still changes, or the operator would not see a new request.
	out, err = run(t, f.ns, func(p *plugin) error { return p.rotate(ctx, managedKinds[0], "payments-api") })
	must(t, err)
	must(t, c.Get(ctx, client.ObjectKeyFromObject(f.sa), &sa))
	if second := sa.Annotations[v1alpha1.AnnotationRotate]; second == first || second == "" {
		t.Errorf("a second rotate left %s=%q, want a new value", v1alpha1.AnnotationRotate, second)
	}
	if !strings.Contains(out, "had not been acted on yet") {
		t.Errorf("a second rotate before the first was acted on did not say so:\n%s", out)
	}
	status, err := run(t, f.ns, func(p *plugin) error { return p.status(ctx, managedKinds[0], "payments-api") })
	must(t, err)
	if lineWith(status, "Rotation requested:", v1alpha1.AnnotationRotate, "not acted on yet") == "" {
		t.Errorf("status does not show the pending rotation:\n%s", status)
	}

	// Kinds without a token or secret cannot rotate, and nothing is written.
	_, err = run(t, f.ns, func(p *plugin) error { return p.rotate(ctx, managedKinds[2], "payments") })
	if err == nil || !strings.Contains(err.Error(), "has no token or secret to rotate") {
		t.Errorf("rotate of a permission: got %v, want a refusal", err)
	}
	var perm v1alpha1.DfnsPermission
	must(t, c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "payments"}, &perm))
	if _, ok := perm.Annotations[v1alpha1.AnnotationRotate]; ok {
		t.Errorf("rotate of a permission set the annotation")
	}
}

func TestApprovals(t *testing.T) {
	a := newFixture(t)
	b := newNamespace(t, "team-b")
	perm := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: b},
		Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Permissions:Assign"}}}
	create(t, perm, func() {
		perm.Status.PendingChangeRequest = &v1alpha1.ChangeRequestStatus{ID: "cr-perm2", ApprovalID: "ap-perm2",
			Status: changePending, Operation: "Update", Generation: 2}
		perm.Status.Conditions = []metav1.Condition{cond(v1alpha1.ConditionSynced, metav1.ConditionFalse,
			v1alpha1.ReasonAwaitingApproval, "change request cr-perm2 waits for approval ap-perm2 in Dfns", 26*time.Hour)}
	})
	// A change Dfns rejected is not held any more.
	rejected := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Name: "rejected", Namespace: b},
		Spec: v1alpha1.DfnsPermissionSpec{Operations: []v1alpha1.Operation{"Wallets:Read"}}}
	create(t, rejected, func() {
		rejected.Status.PendingChangeRequest = &v1alpha1.ChangeRequestStatus{ID: "cr-rej", ApprovalID: "ap-rej",
			Status: "Rejected", Operation: "Update"}
	})

	out, err := run(t, a.ns, func(p *plugin) error { return p.approvals(ctx, false) })
	must(t, err)
	if lineWith(out, a.ns, kindAssignment, "by-id", "Create", "cr-assign1", "ap-assign1", "3h") == "" {
		t.Errorf("approvals lacks the held assignment with its approval ID:\n%s", out)
	}
	if strings.Contains(out, "ap-perm2") {
		t.Errorf("approvals without -A lists another namespace:\n%s", out)
	}

	out, err = run(t, a.ns, func(p *plugin) error { return p.approvals(ctx, true) })
	must(t, err)
	for _, want := range [][]string{
		{a.ns, kindAssignment, "by-id", "cr-assign1", "ap-assign1"},
		{b, kindPermission, "admin", "Update", "cr-perm2", "ap-perm2", "26h"},
	} {
		if lineWith(out, want...) == "" {
			t.Errorf("approvals -A lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ap-rej") {
		t.Errorf("approvals lists a rejected change:\n%s", out)
	}

	out, err = run(t, newNamespace(t, "quiet"), func(p *plugin) error { return p.approvals(ctx, false) })
	must(t, err)
	if !strings.Contains(out, "No resource in namespace quiet-") {
		t.Errorf("approvals in a namespace with none held: got %q", out)
	}
}
