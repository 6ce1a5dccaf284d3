//go:build e2e

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

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// The rotation spec: a PAT that lives 90 s and is renewed 60 s before it expires, so that a
// new token is minted every 30 s; the previous one stays usable for 20 s. Its Secret feeds the
// Deployment "app", which has no pods (no kubelet runs) but whose pod template shows each
// restart.
const (
	rotNamespace   = "rotation"
	rotPAT         = "ci"
	rotLifetime    = 90 * time.Second
	rotRenewBefore = 60 * time.Second
	rotGrace       = 20 * time.Second
	// rotRotations is how many rotations the spec follows to their retirement.
	rotRotations = 2
)

const rotationManifest = `apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: ci-ops}
spec:
  operations: [Webhooks:Create, Webhooks:Read, Webhooks:Delete]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: registry.invalid/app:never
          envFrom: [{secretRef: {name: ci}}]
---
apiVersion: access.dfns.io/v1alpha1
kind: DfnsPersonalAccessToken
metadata: {name: ci}
spec:
  permissionRef: {name: ci-ops}
  secondsValid: 90
  rotation: {renewBefore: 60s, gracePeriod: 20s}
  rolloutRestartTargets: [{kind: Deployment, name: app}]
`

// rotSnap is what the observer saw at one moment, read in the order the operator writes in
// reverse (Deployment, Secret, resource, Dfns): a restart seen implies the Secret it follows.
type rotSnap struct {
	at           time.Time
	generation   int64  // the Deployment's
	restartedAt  string // its pod template's access.dfns.io/restartedAt
	restartedFor string // and access.dfns.io/restartedFor
	secret       string // a short hash of the Secret's DFNS_AUTH_TOKEN
	tokenID      string // status.tokenId
	fingerprint  string // status.secretFingerprint
	renewAt      time.Time
	expiresAt    time.Time
	previous     []v1alpha1.PreviousObject
	active       []string // IDs of the active PATs named rotation/ci.*
}

// observer samples the rotating resource until stopped.
type observer struct {
	mu    sync.Mutex
	snaps []rotSnap
	errs  []string
}

func (o *observer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s, err := snapshot(ctx)
		o.mu.Lock()
		if err != nil {
			o.errs = append(o.errs, err.Error())
		} else {
			o.snaps = append(o.snaps, s)
		}
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *observer) all() []rotSnap {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.snaps)
}

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func snapshot(ctx context.Context) (rotSnap, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := rotSnap{at: time.Now()}
	var d appsv1.Deployment
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: "app"}, &d); err != nil {
		return s, err
	}
	s.generation = d.Generation
	s.restartedAt = d.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
	s.restartedFor = d.Spec.Template.Annotations[v1alpha1.AnnotationRestartedFor]
	var sec corev1.Secret
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: rotPAT}, &sec); err != nil {
		return s, err
	}
	s.secret = shortHash(sec.Data["DFNS_AUTH_TOKEN"])
	var pat v1alpha1.DfnsPersonalAccessToken
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: rotPAT}, &pat); err != nil {
		return s, err
	}
	ts := pat.Status.TokenStatus
	s.tokenID, s.fingerprint, s.previous = ts.TokenID, ts.SecretFingerprint, pat.Status.Previous
	if ts.RenewAt != nil {
		s.renewAt = ts.RenewAt.Time
	}
	if ts.ExpiresAt != nil {
		s.expiresAt = ts.ExpiresAt.Time
	}
	var err error
	s.active, err = activePATs(ctx)
	return s, err
}

// activePATs are the IDs of the active PATs in Dfns named after the rotating resource.
func activePATs(ctx context.Context) ([]string, error) {
	all, err := admin.ListPersonalAccessTokens(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range all {
		if t.IsActive && strings.HasPrefix(t.Name, rotNamespace+"/"+rotPAT+".") {
			ids = append(ids, t.TokenID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// appLoop is an app that reads the Secret before every call, as a process reading a mounted
// Secret would, and makes signed calls with whatever token it holds.
type appLoop struct {
	mu     sync.Mutex
	calls  int
	failed []string
	tokens []string // short hashes of the tokens it used, in order
}

// run calls until ctx is done; stopping lets the calls under way finish, so that only Dfns
// or the Secret can fail one.
func (a *appLoop) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var api dfns.API
	var token string
	calls := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		api, token, err = a.refresh(calls, api, token)
		if err != nil {
			a.record(0, fmt.Sprintf("%s reading the Secret: %v", time.Now().Format(time.TimeOnly), err))
			continue
		}
		a.call(calls, api, token)
	}
}

// refresh re-reads the Secret and builds a new client when its token changed. The client
// makes one attempt per call: a retry would hide a refused token.
func (a *appLoop) refresh(ctx context.Context, api dfns.API, token string) (dfns.API, string, error) {
	var s corev1.Secret
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: rotNamespace, Name: rotPAT}, &s); err != nil {
		return api, token, err
	}
	if got := shortHash(s.Data["DFNS_AUTH_TOKEN"]); got != token || api == nil {
		if string(s.Data["DFNS_API_URL"]) != h.SandboxURL {
			return api, token, fmt.Errorf("DFNS_API_URL %q is not the sandbox's", s.Data["DFNS_API_URL"])
		}
		c, err := dfns.New(dfns.Options{MaxAttempts: 1,
			Credentials: dfns.NewStaticCredentials(harness.SecretCredentials(s.Data, h.Sandbox))})
		if err != nil {
			return api, token, err
		}
		a.mu.Lock()
		a.tokens = append(a.tokens, got)
		a.mu.Unlock()
		return c, got, nil
	}
	return api, token, nil
}

// call makes a signed create, a read and a signed delete of a webhook.
func (a *appLoop) call(ctx context.Context, api dfns.API, token string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fail := func(op string, err error) {
		a.record(1, fmt.Sprintf("%s %s with token %s: %v", time.Now().Format(time.TimeOnly), op, token, err))
	}
	wh, err := api.CreateWebhook(ctx, dfns.CreateWebhookRequest{URL: "https://app.example/hook", Events: []string{"*"}})
	if err != nil {
		fail("CreateWebhook", err)
		return
	}
	a.record(1, "")
	if _, err := api.GetWebhook(ctx, wh.ID); err != nil {
		fail("GetWebhook", err)
	} else {
		a.record(1, "")
	}
	if err := api.DeleteWebhook(ctx, wh.ID); err != nil {
		fail("DeleteWebhook", err)
	} else {
		a.record(1, "")
	}
}

func (a *appLoop) record(calls int, failure string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls += calls
	if failure != "" {
		a.failed = append(a.failed, failure)
	}
}

// rotation is one rotation as the observer saw it.
type rotation struct {
	oldID, newID     string
	renewAt          time.Time // the old token's status.renewAt
	oldExpires       time.Time
	minted           time.Time // the new PAT first seen active in Dfns
	secretChanged    time.Time // the Secret first seen with the new token
	statusChanged    time.Time // status.tokenId first seen naming the new PAT
	fingerprint      string    // status.secretFingerprint of the new token
	restartSeen      time.Time // the Deployment's generation first seen past this restart
	restartedAt      string
	restartedFor     string
	generation       int64
	retireAt         time.Time // status.previous' entry for the old PAT
	retired          time.Time // the old PAT first seen gone from Dfns
	activeAtRetire   []string
	tokenIDAtRetire  string
	generationAtDone int64
}

// firstAt is the first snapshot from index from on for which ok holds; -1 when none does.
func firstAt(snaps []rotSnap, from int, ok func(rotSnap) bool) int {
	for i := max(from, 0); i < len(snaps); i++ {
		if ok(snaps[i]) {
			return i
		}
	}
	return -1
}

// rotationsOf reads the rotations in a series of snapshots; gen0 is the Deployment's
// generation before any. A rotation not yet retired has a zero retired time.
func rotationsOf(snaps []rotSnap, gen0 int64) []rotation {
	var ids, secrets []string
	for _, s := range snaps {
		if s.tokenID != "" && (len(ids) == 0 || ids[len(ids)-1] != s.tokenID) {
			ids = append(ids, s.tokenID)
		}
		if len(secrets) == 0 || secrets[len(secrets)-1] != s.secret {
			secrets = append(secrets, s.secret)
		}
	}
	var out []rotation
	for k := 1; k < len(ids); k++ {
		r := rotation{oldID: ids[k-1], newID: ids[k]}
		for _, s := range snaps {
			if s.tokenID == r.oldID {
				r.renewAt, r.oldExpires = s.renewAt, s.expiresAt
			}
			if s.tokenID == r.newID {
				r.fingerprint = s.fingerprint
				for _, p := range s.previous {
					if p.ID == r.oldID {
						r.retireAt = p.RetireAt.Time
					}
				}
			}
		}
		minted := firstAt(snaps, 0, func(s rotSnap) bool { return slices.Contains(s.active, r.newID) })
		if minted < 0 {
			continue
		}
		r.minted = snaps[minted].at
		if k < len(secrets) {
			if i := firstAt(snaps, 0, func(s rotSnap) bool { return s.secret == secrets[k] }); i >= 0 {
				r.secretChanged = snaps[i].at
			}
		}
		if i := firstAt(snaps, 0, func(s rotSnap) bool { return s.tokenID == r.newID }); i >= 0 {
			r.statusChanged = snaps[i].at
		}
		if i := firstAt(snaps, 0, func(s rotSnap) bool { return s.generation >= gen0+int64(k) }); i >= 0 {
			s := snaps[i]
			r.restartSeen, r.restartedAt, r.restartedFor, r.generation = s.at, s.restartedAt, s.restartedFor, s.generation
		}
		if i := firstAt(snaps, minted, func(s rotSnap) bool { return !slices.Contains(s.active, r.oldID) }); i >= 0 {
			s := snaps[i]
			r.retired, r.activeAtRetire, r.tokenIDAtRetire, r.generationAtDone = s.at, s.active, s.tokenID, s.generation
		}
		out = append(out, r)
	}
	return out
}

// retiredCount is how many rotations are complete: their previous PAT is gone.
func retiredCount(rs []rotation) int {
	n := 0
	for _, r := range rs {
		if !r.retired.IsZero() {
			n++
		}
	}
	return n
}

// since words t relative to base: "+1.234s".
func since(base, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%+.3fs", t.Sub(base).Seconds())
}

// timeline is one rotation in a line, times relative to the old token's renewAt.
func (r rotation) timeline(n int) string {
	restarted, _ := time.Parse(time.RFC3339, r.restartedAt)
	return fmt.Sprintf("rotation timeline #%d (%s -> %s): renewAt %s (expiresAt %s, %s later); "+
		"new PAT active in Dfns at %s, Secret changed at %s, status.tokenId at %s, "+
		"Deployment restartedAt %s (%s; seen at %s, generation %d), "+
		"status.previous retireAt %s (%s), previous retired at %s",
		n, r.oldID, r.newID, r.renewAt.UTC().Format(time.RFC3339), r.oldExpires.UTC().Format(time.RFC3339),
		r.oldExpires.Sub(r.renewAt), since(r.renewAt, r.minted), since(r.renewAt, r.secretChanged),
		since(r.renewAt, r.statusChanged), r.restartedAt, since(r.renewAt, restarted), since(r.renewAt, r.restartSeen),
		r.generation, r.retireAt.UTC().Format(time.RFC3339), since(r.renewAt, r.retireAt), since(r.renewAt, r.retired))
}

var _ = Describe("Rotation", Ordered, func() {
	It("renews a PAT before it expires, with no failed call, one restart per rotation and one PAT left", func() {
		ctx := context.Background()
		createNamespace(rotNamespace)
		kubectlIn(rotationManifest, "apply", "-n", rotNamespace, "-f", "-")
		kubectl("wait", "--for=condition=Ready", "dfnspersonalaccesstoken/"+rotPAT, "-n", rotNamespace, "--timeout=90s")

		first, err := snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(first.tokenID).NotTo(BeEmpty())
		Expect(first.active).To(Equal([]string{first.tokenID}), "one PAT to begin with")
		Expect(first.restartedAt).To(BeEmpty(), "the first Secret restarts nothing")
		gen0 := first.generation

		By("an app calling Dfns every 500 ms with the token it re-reads from the Secret, across rotations")
		runCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		obs, app := &observer{}, &appLoop{}
		wg.Go(func() { obs.run(runCtx, 250*time.Millisecond) })
		wg.Go(func() { app.run(runCtx, 500*time.Millisecond) })
		stopped := false
		halt := func() {
			if !stopped {
				stopped = true
				stop()
				wg.Wait()
			}
		}
		DeferCleanup(halt)

		// Each rotation comes 30 s after the previous one and is retired 20 s later.
		Eventually(func() int { return retiredCount(rotationsOf(obs.all(), gen0)) }).
			WithTimeout(rotRotations*(rotLifetime-rotRenewBefore) + rotGrace + 60*time.Second).
			WithPolling(time.Second).Should(BeNumerically(">=", rotRotations))
		halt()
		snaps := obs.all()
		rs := rotationsOf(snaps, gen0)
		for i, r := range rs[:rotRotations] {
			_, _ = fmt.Fprintln(GinkgoWriter, r.timeline(i+1))
		}
		app.mu.Lock()
		calls, failed, tokens := app.calls, app.failed, app.tokens
		app.mu.Unlock()
		_, _ = fmt.Fprintf(GinkgoWriter, "rotation: the app made %d calls with %d tokens, %d failed; "+
			"observer: %d snapshots, %d read errors\n", calls, len(tokens), len(failed), len(snaps), len(obs.errs))

		By("no call failed, and the app used each token in turn")
		Expect(failed).To(BeEmpty())
		Expect(calls).To(BeNumerically(">", 100))
		Expect(len(tokens)).To(BeNumerically(">=", rotRotations+1))

		for i, r := range rs[:rotRotations] {
			checkRotation(i+1, r, gen0)
		}

		By("each generation of the Deployment has its own restartedAt, and restarts never outrun the Secret")
		byGen := map[int64]string{}
		secrets := []string{}
		for _, s := range snaps {
			if len(secrets) == 0 || secrets[len(secrets)-1] != s.secret {
				secrets = append(secrets, s.secret)
			}
			if at, seen := byGen[s.generation]; seen {
				Expect(s.restartedAt).To(Equal(at), "generation %d changed its restartedAt", s.generation)
			}
			byGen[s.generation] = s.restartedAt
			Expect(s.generation-gen0).To(BeNumerically("<=", len(secrets)-1),
				"at %s the Deployment was restarted more often than the Secret changed", s.at.Format(time.TimeOnly))
		}

		By("events Rotated, Restarted and Retired, one per rotation at least")
		Eventually(func(g Gomega) {
			out, err := h.Run("", "get", "events", "-n", rotNamespace, "--field-selector",
				"involvedObject.name="+rotPAT, "-o", `jsonpath={range .items[*]}{.reason}{"\n"}{end}`)
			g.Expect(err).NotTo(HaveOccurred())
			reasons := map[string]int{}
			for reason := range strings.FieldsSeq(out) {
				reasons[reason]++
			}
			_, _ = fmt.Fprintf(GinkgoWriter, "rotation: events of %s: %v\n", rotPAT, reasons)
			for _, reason := range []string{"Rotated", "Restarted", "Retired"} {
				g.Expect(reasons[reason]).To(BeNumerically(">=", rotRotations), "events %s", reason)
			}
		}).WithTimeout(20 * time.Second).WithPolling(2 * time.Second).Should(Succeed())

		By("deleting the resource retires every PAT it made")
		kubectl("delete", "dfnspersonalaccesstoken", rotPAT, "-n", rotNamespace, "--timeout=60s")
		Expect(activePATs(ctx)).To(BeEmpty())
	})
})

// checkRotation asserts one rotation's order and timing.
func checkRotation(n int, r rotation, gen0 int64) {
	GinkgoHelper()
	By(fmt.Sprintf("rotation %d: %s replaced by %s", n, r.oldID, r.newID))
	Expect(r.oldExpires.Sub(r.renewAt)).To(Equal(rotRenewBefore), "renewAt is renewBefore ahead of expiry")
	// renewAt is truncated to the second; the observer only adds delay.
	Expect(r.minted).To(BeTemporally(">=", r.renewAt), "not minted before renewAt")
	Expect(r.minted).To(BeTemporally("<", r.renewAt.Add(10*time.Second)), "minted soon after renewAt")
	Expect(r.secretChanged).NotTo(BeZero())
	Expect(r.secretChanged).To(BeTemporally(">=", r.minted), "the Secret follows the mint")

	Expect(r.restartedFor).To(Equal(r.fingerprint), "the restart names the new Secret's fingerprint")
	Expect(r.generation).To(Equal(gen0+int64(n)), "exactly one restart per rotation")
	restarted, err := time.Parse(time.RFC3339, r.restartedAt)
	Expect(err).NotTo(HaveOccurred())
	Expect(restarted).To(BeTemporally(">=", r.renewAt), "restarted after renewAt")
	Expect(r.restartSeen).To(BeTemporally(">=", r.secretChanged), "restarted after the Secret changed")

	Expect(r.retireAt).NotTo(BeZero(), "status.previous lists %s with its retireAt", r.oldID)
	Expect(r.retireAt.Sub(r.secretChanged)).To(BeNumerically("~", rotGrace, 2*time.Second),
		"retireAt is the grace period after the Secret changed")
	Expect(r.retired).To(BeTemporally(">=", r.retireAt), "the previous PAT worked until its retireAt")
	Expect(r.retired).To(BeTemporally("<", r.retireAt.Add(10*time.Second)), "retired soon after retireAt")
	Expect(r.tokenIDAtRetire).To(Equal(r.newID))
	Expect(r.activeAtRetire).To(Equal([]string{r.newID}), "after the grace period, exactly one PAT is active")
	Expect(r.generationAtDone).To(Equal(gen0+int64(n)), "no restart while the previous PAT is retired")
}
