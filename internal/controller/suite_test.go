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

package controller

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
	"github.com/dfns-operator/dfns-operator/internal/driver"
	"github.com/dfns-operator/dfns-operator/internal/ownership"
	// +kubebuilder:scaffold:imports
)

// The envtest suite runs the real manager (Setup + CacheOptions) against an API server and the
// Dfns sandbox served over HTTP, with a real dfns.Client in login mode.

// syncPeriod is short so that drift and approvals are seen quickly.
const syncPeriod = time.Second

// restoreMode labels the resources of the backup-and-restore spec, which runs a manager of its
// own so that it can stop it while it deletes and recreates them.
const restoreMode = "restore"

// testModeLabel selects which of the suite's managers reconciles a resource: the main one
// (login mode), the token-mode one, the restore one, or the one whose mounted credentials
// rotate (mountedMode, which alone sees the ClusterDfnsConnections so labelled).
const testModeLabel = "test.dfns.io/mode"

// mountedMode labels the resources of the spec that rotates a manager's mounted credentials.
const mountedMode = "mounted"

var (
	ctx        context.Context
	cancel     context.CancelFunc
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	testScheme = runtime.NewScheme()

	sb        *sandbox.Server
	sbServer  *httptest.Server
	sb2       *sandbox.Server // a second organisation, reached through a DfnsConnection
	sb2Server *httptest.Server
	admin     *sandbox.UserCredentials
	approver  *sandbox.UserCredentials
	operator  dfns.CredentialsSource // the operator's mounted credentials (the admin user, login mode)
	dashboard dfns.API               // a human acting in the Dfns dashboard (same admin user)
	approverC dfns.API               // a second user who approves or denies change requests

	capture = &captured{}

	// clock is the time of the sandbox and of every manager: a rotation spec moves it.
	clock = &testClock{}

	// ownershipKey is the key every manager of the suite signs proofs with, loaded from its
	// Secret in the operator's namespace as the manager does.
	ownershipKey *ownership.Key
)

// captured collects every log line, event and status written during the suite, and every
// secret value issued, for the leak check in AfterSuite.
type captured struct {
	mu      sync.Mutex
	logs    bytes.Buffer
	events  []string
	status  []string
	secrets map[string]bool
}

func (c *captured) log(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs.WriteString(line)
	c.logs.WriteByte('\n')
}

func (c *captured) addStatus(obj any) {
	b, _ := json.Marshal(obj)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = append(c.status, string(b))
}

func (c *captured) addSecret(s *corev1.Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets == nil {
		c.secrets = map[string]bool{}
	}
	for _, k := range []string{KeyAuthToken, KeyPrivateKey, KeyWebhookSecret} {
		if v := string(s.Data[k]); v != "" {
			c.secrets[v] = true
		}
	}
}

// eventsFor returns the captured events ("type reason message") of one object.
func (c *captured) eventsFor(obj client.Object) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := obj.GetNamespace() + "/" + obj.GetName() + " "
	var out []string
	for _, e := range c.events {
		if tail, ok := strings.CutPrefix(e, prefix); ok {
			out = append(out, tail)
		}
	}
	return out
}

// Eventf records an event into the capture.
func (c *captured) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	o := obj.(client.Object)
	line := fmt.Sprintf("%s/%s %s %s %s", o.GetNamespace(), o.GetName(), eventtype, reason, fmt.Sprintf(messageFmt, args...))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, line)
}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(funcr.New(func(prefix, args string) {
		capture.log(prefix + " " + args)
		_, _ = fmt.Fprintln(GinkgoWriter, prefix, args)
	}, funcr.Options{Verbosity: 4}))
	ctx, cancel = context.WithCancel(context.Background())
	Expect(clientgoscheme.AddToScheme(testScheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(testScheme)).To(Succeed())
	// +kubebuilder:scaffold:scheme

	By("starting the Dfns sandbox over HTTP")
	var err error
	strict, err := sandbox.ParseStrictness(strings.FieldsFunc(os.Getenv("SANDBOX_STRICT"), func(r rune) bool { return r == ',' }))
	Expect(err).NotTo(HaveOccurred(), "SANDBOX_STRICT")
	if strict != (sandbox.Strictness{}) {
		By(fmt.Sprintf("running against a strict sandbox: %s", os.Getenv("SANDBOX_STRICT")))
	}
	sb, err = sandbox.New(sandbox.Options{Seed: 1, Now: clock.Now, Strict: strict})
	Expect(err).NotTo(HaveOccurred())
	sbServer = httptest.NewServer(sb.Handler())
	admin, err = sb.CreateUser("operator@example.com", true)
	Expect(err).NotTo(HaveOccurred())
	approver, err = sb.CreateUser("approver@example.com", true)
	Expect(err).NotTo(HaveOccurred())
	operator = dfns.NewStaticCredentials(loginCredentials(sbServer.URL, admin))
	sb2, err = sandbox.New(sandbox.Options{Seed: 2, Strict: strict})
	Expect(err).NotTo(HaveOccurred())
	sb2Server = httptest.NewServer(sb2.Handler())
	dashboard = loginClient(admin)
	approverC = loginClient(approver)

	By("bootstrapping the test environment")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if dir := getFirstFoundEnvTestBinaryDir(); dir != "" && os.Getenv("KUBEBUILDER_ASSETS") == "" {
		testEnv.BinaryAssetsDirectory = dir
	}
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())

	By("loading the ownership key from the operator's namespace")
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultOperatorNamespace}})).To(Succeed())
	ownershipKey, err = LoadOwnershipKey(ctx, k8sClient, DefaultOperatorNamespace)
	Expect(err).NotTo(HaveOccurred())

	By("creating the default connection, which serves the namespaces the suite makes")
	Expect(k8sClient.Create(ctx, &v1alpha1.ClusterDfnsConnection{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultConnectionName},
		Spec: v1alpha1.ClusterDfnsConnectionSpec{
			ConnectionSpec:    v1alpha1.ConnectionSpec{Credentials: v1alpha1.ConnectionCredentials{Mounted: &v1alpha1.MountedCredentials{}}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{enabledLabel: "true"}},
			// The specs of other features adopt, and reference objects made in the dashboard.
			Limits: &v1alpha1.ConnectionLimits{Adoption: v1alpha1.AdoptionAllowed, PermissionIDs: []string{"*"}, IdentityIDs: []string{"*"}},
		}})).To(Succeed())

	By("starting the manager")
	_ = startManager(operator, "login") // runs until the suite's context ends
})

// enabledLabel opts a namespace into the default connection, as the shipped one does.
const enabledLabel = "access.dfns.io/enabled"

var _ = AfterSuite(func() {
	By("checking that no issued token or private key appears in logs, events or status")
	checkNoLeaks()
	By("tearing down the test environment")
	cancel()
	for _, s := range []*httptest.Server{sbServer, sb2Server} {
		if s != nil {
			s.Close()
		}
	}
	Eventually(func() error { return testEnv.Stop() }, time.Minute, time.Second).Should(Succeed())
})

// testClock is the real time moved forward by the specs that need days to pass in seconds.
type testClock struct{ offset atomic.Int64 }

// Now is the clock's time.
func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward.
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// tee records events into the capture and through the manager's real recorder.
type tee []driver.EventRecorder

// Eventf records the event with every recorder.
func (t tee) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	for _, r := range t {
		r.Eventf(obj, eventtype, reason, messageFmt, args...)
	}
}

// loginClient is a real dfns.Client logged in as the user.
func loginClient(u *sandbox.UserCredentials) dfns.API {
	return newClient(loginCredentials(sbServer.URL, u))
}

// loginCredentials are the user's credentials in login mode, against the sandbox at url.
func loginCredentials(url string, u *sandbox.UserCredentials) dfns.Credentials {
	return dfns.Credentials{APIURL: url, OrgID: u.OrgID, Username: u.Username, CredID: u.CredID, PrivateKeyPEM: u.PrivateKeyPEM}
}

// newClient builds a real dfns.Client against the sandbox.
func newClient(creds dfns.Credentials) dfns.API {
	c, err := testClient("", dfns.NewStaticCredentials(creds), v1alpha1.RateLimit{})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// testClient builds a connection's client as the manager does, with the suite's patience.
func testClient(name string, creds dfns.CredentialsSource, rate v1alpha1.RateLimit) (dfns.API, error) {
	o := dfns.Options{Credentials: creds, QPS: 1000, Burst: 1000, Connection: name,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if rate.QPS > 0 {
		o.QPS, o.Burst = float64(rate.QPS), int(rate.Burst)
	}
	return dfns.New(o)
}

// startManager runs a manager with the operator's Setup and CacheOptions. The suite runs two
// (login mode and token mode); each sees only the resources labelled with its mode. A manager
// still reconciles what a watch enqueues (an owned Secret), so the token-mode one runs only for
// its spec: stop ends it and waits until it has stopped.
func startManager(mounted dfns.CredentialsSource, mode string, configure ...func(*Options)) (stop func()) {
	sel := labels.SelectorFromSet(labels.Set{testModeLabel: mode})
	if mode == "login" {
		sel = labels.NewSelector()
		req, err := labels.NewRequirement(testModeLabel, selection.NotIn, []string{"token", restoreMode, mountedMode})
		Expect(err).NotTo(HaveOccurred())
		sel = sel.Add(*req)
	}
	opts := CacheOptions(DefaultOperatorNamespace, nil)
	// The mounted-rotation manager has credentials of its own: it alone sees the connections
	// labelled with its mode, which the main manager does not see.
	if mode == "login" || mode == mountedMode {
		opts.ByObject[&v1alpha1.ClusterDfnsConnection{}] = cache.ByObject{Label: sel}
	}
	opts.ByObject[&v1alpha1.DfnsServiceAccount{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsPermission{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsPermissionAssignment{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsPersonalAccessToken{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsWebhook{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsPolicy{}] = cache.ByObject{Label: sel}
	opts.ByObject[&v1alpha1.DfnsUser{}] = cache.ByObject{Label: sel}
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: testScheme, Cache: opts, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip},
	})
	Expect(err).NotTo(HaveOccurred())
	rec := tee{capture, recorderAdapter{mgr.GetEventRecorder("dfns-operator")}}
	setup := Options{Mounted: mounted, NewClient: testClient, SyncPeriod: syncPeriod, EventRecorder: rec, MaxConcurrentReconciles: 2,
		OwnershipKey: ownershipKey, ConnectionAPIURLs: []string{sb2Server.URL}, Now: clock.Now}
	for _, f := range configure {
		f(&setup)
	}
	Expect(Setup(mgr, setup)).To(Succeed())
	watchForCapture(mgr)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	return func() { cancel(); <-done }
}

// watchForCapture records every status and every Secret value the manager's cache sees.
func watchForCapture(mgr ctrl.Manager) {
	add := func(obj client.Object, f func(any)) {
		inf, err := mgr.GetCache().GetInformer(ctx, obj)
		Expect(err).NotTo(HaveOccurred())
		_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    f,
			UpdateFunc: func(_, o any) { f(o) },
		})
		Expect(err).NotTo(HaveOccurred())
	}
	add(&v1alpha1.DfnsServiceAccount{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsServiceAccount).Status) })
	add(&v1alpha1.DfnsPermission{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsPermission).Status) })
	add(&v1alpha1.DfnsPermissionAssignment{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsPermissionAssignment).Status) })
	add(&v1alpha1.DfnsPersonalAccessToken{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsPersonalAccessToken).Status) })
	add(&v1alpha1.DfnsWebhook{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsWebhook).Status) })
	add(&v1alpha1.DfnsPolicy{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsPolicy).Status) })
	add(&v1alpha1.DfnsUser{}, func(o any) { capture.addStatus(o.(*v1alpha1.DfnsUser).Status) })
	add(&corev1.Secret{}, func(o any) { capture.addSecret(o.(*corev1.Secret)) })
}

// checkNoLeaks fails when a token or private key (or a line of its PEM body) appears in the
// captured logs, events or statuses.
func checkNoLeaks() {
	capture.mu.Lock()
	defer capture.mu.Unlock()
	Expect(capture.secrets).NotTo(BeEmpty(), "the suite issued no secrets to check")
	haystack := capture.logs.String() + strings.Join(capture.events, "\n") + strings.Join(capture.status, "\n")
	Expect(haystack).To(ContainSubstring("Created"), "the capture saw nothing")
	needles := make([]string, 0, len(capture.secrets)+1)
	needles = append(needles, string(admin.PrivateKeyPEM))
	for v := range capture.secrets {
		needles = append(needles, v)
	}
	for _, v := range needles {
		for _, part := range secretParts(v) {
			// Say where, by what precedes it, never the value itself.
			if i := strings.Index(haystack, part); i >= 0 {
				Fail(fmt.Sprintf("a secret value leaked, after: %q", haystack[max(0, i-300):i]))
			}
		}
	}
}

// secretParts is the value itself, its base64 form and, for a PEM, each line of its body.
func secretParts(v string) []string {
	parts := []string{v, base64.StdEncoding.EncodeToString([]byte(v))}
	for line := range strings.SplitSeq(v, "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			parts = append(parts, line)
		}
	}
	return parts
}

// getFirstFoundEnvTestBinaryDir finds the control plane built by hack/setup-envtest.sh, for
// runs without KUBEBUILDER_ASSETS (e.g. from an IDE).
func getFirstFoundEnvTestBinaryDir() string {
	basePath := filepath.Join("..", "..", "bin", "k8s")
	entries, err := os.ReadDir(basePath)
	if err != nil {
		return ""
	}
	for _, entry := range entries {
		if entry.IsDir() {
			return filepath.Join(basePath, entry.Name())
		}
	}
	return ""
}

// newNamespace makes a namespace for one spec.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: map[string]string{enabledLabel: "true"}}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// conditionOf reads a condition of a resource.
func conditionOf(obj interface {
	client.Object
	Managed() *v1alpha1.ManagedStatus
}, typ string) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return meta.FindStatusCondition(obj.Managed().Conditions, typ)
	}
}

// haveCondition matches a condition's status and reason.
func haveCondition(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

// eventually is Eventually with the suite's patience.
func eventually(actual any) AsyncAssertion {
	return Eventually(actual).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond)
}

// waitReady waits until the resource is Ready and Synced.
func waitReady(obj interface {
	client.Object
	Managed() *v1alpha1.ManagedStatus
}) {
	GinkgoHelper()
	eventually(conditionOf(obj, v1alpha1.ConditionReady)).Should(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonAvailable))
	eventually(conditionOf(obj, v1alpha1.ConditionSynced)).Should(haveCondition(metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess))
}

// deleteAndWait deletes a resource and waits until it is gone.
func deleteAndWait(obj client.Object) {
	GinkgoHelper()
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, obj))).To(Succeed())
	eventually(func() bool {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return err != nil
	}).Should(BeTrue())
}
