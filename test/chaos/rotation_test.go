//go:build chaos

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

package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/test/harness"
)

// rotationGrace is the grace period of the rotated accounts: short, so that their superseded
// identities are retired within the run.
const rotationGrace = 10 * time.Second

// rotationPlan is which service accounts are rotated (access.dfns.io/rotate) in which kill
// rounds, and what was asked of each.
type rotationPlan struct {
	accounts []int         // the rotated accounts, sorted
	rounds   map[int][]int // kill round -> accounts asked to rotate in it
	want     map[string]string
	// last is what each account held just before its last request: a rotation acted on after
	// it replaces both.
	last map[string]held
	sent int
	// withoutID is how many accounts were asked to rotate before they had an identity.
	withoutID int
}

// held is an account's identity and the token of its Secret ("" for none).
type held struct{ id, token string }

// planRotations picks share percent of the n accounts. Half of them are asked to rotate in the
// second half of the first kills rounds, while the batch is made, some before they have an
// identity: they are drawn from the first accounts of the batch, which the manager makes
// first. Then each is asked once in the rotationKills rounds that follow, and one in four of
// them again in a later round, when its rotation may still be under way.
func planRotations(rng *rand.Rand, n, kills, rotationKills, share int) *rotationPlan {
	p := &rotationPlan{rounds: map[int][]int{}, want: map[string]string{}, last: map[string]held{}}
	count := n * share / 100
	p.accounts = rng.Perm(min(n, 2*count))[:count]
	slices.Sort(p.accounts)
	for j, i := range p.accounts {
		if j%2 == 0 {
			r := kills/2 + rng.IntN(kills-kills/2)
			p.rounds[r] = append(p.rounds[r], i)
		}
		r := rng.IntN(rotationKills)
		p.rounds[kills+r] = append(p.rounds[kills+r], i)
		if j%4 == 1 && r < rotationKills-1 {
			later := kills + r + 1 + rng.IntN(rotationKills-r-1)
			p.rounds[later] = append(p.rounds[later], i)
		}
	}
	return p
}

// rotating reports whether account i is rotated.
func (p *rotationPlan) rotating(i int) bool {
	_, found := slices.BinarySearch(p.accounts, i)
	return found
}

// request sets access.dfns.io/rotate, with kubectl, on the accounts of round k, having read
// what each holds.
func (p *rotationPlan) request(ctx context.Context, h *harness.Harness, ns string, k int) error {
	if len(p.rounds[k]) == 0 {
		return nil
	}
	names := make([]string, 0, len(p.rounds[k]))
	for _, i := range p.rounds[k] {
		name := harness.AppName(i)
		names = append(names, name)
		now, err := holds(ctx, h, ns, name)
		if err != nil {
			return err
		}
		if _, asked := p.last[name]; !asked && now.id == "" {
			p.withoutID++
		}
		p.last[name] = now
	}
	value := fmt.Sprintf("round-%d", k)
	args := append([]string{"annotate", "dfnsserviceaccounts", "-n", ns, "--overwrite"}, names...)
	if _, err := h.Run("", append(args, v1alpha1.AnnotationRotate+"="+value)...); err != nil {
		return err
	}
	for _, name := range names {
		p.want[name] = value
	}
	p.sent += len(names)
	return nil
}

// holds reads an account's recorded identity and a hash of its Secret's token.
func holds(ctx context.Context, h *harness.Harness, ns, name string) (held, error) {
	var sa v1alpha1.DfnsServiceAccount
	if err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sa); err != nil {
		return held{}, err
	}
	out := held{id: sa.Annotations[v1alpha1.AnnotationExternalID]}
	var s corev1.Secret
	err := h.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: sa.SecretName()}, &s)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return held{}, err
	case len(s.Data["DFNS_AUTH_TOKEN"]) > 0:
		sum := sha256.Sum256(s.Data["DFNS_AUTH_TOKEN"])
		out.token = hex.EncodeToString(sum[:8])
	}
	return out, nil
}

// pending lists the accounts whose rotation is not over: a request not acted on, or a
// superseded identity not retired yet.
func (p *rotationPlan) pending(ctx context.Context, h *harness.Harness, ns string) ([]string, error) {
	var list v1alpha1.DfnsServiceAccountList
	if err := h.K8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []string
	for _, sa := range list.Items {
		if want, ok := p.want[sa.Name]; ok && sa.Status.RotateRequest != want {
			out = append(out, fmt.Sprintf("%s: rotate request %q not acted on (status.rotateRequest %q)",
				sa.Name, want, sa.Status.RotateRequest))
		}
		if prev := sa.Annotations[v1alpha1.AnnotationPrevious]; prev != "" || len(sa.Status.Previous) > 0 {
			out = append(out, fmt.Sprintf("%s: superseded identities not retired: status.previous %v", sa.Name,
				sa.Status.Previous))
		}
	}
	return out, nil
}

// settle waits until no rotation is pending; on timeout it logs what is.
func (p *rotationPlan) settle(ctx context.Context, t *testing.T, h *harness.Harness, ns string,
	timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending, err := p.pending(ctx, h, ns)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, line := range pending {
				t.Log(line)
			}
			return fmt.Errorf("%d rotations still pending after %s", len(pending), timeout)
		}
		time.Sleep(2 * time.Second)
	}
}

// rotated counts the accounts that hold another identity, and another token in their Secret,
// than they did at their last request, and describes those that do not. An account without an
// identity then has nothing to compare.
func (p *rotationPlan) rotated(ctx context.Context, h *harness.Harness, ns string) (int, []string, error) {
	n := 0
	var same []string
	for name, before := range p.last {
		if before.id == "" {
			continue
		}
		now, err := holds(ctx, h, ns, name)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case now.id == before.id:
			same = append(same, fmt.Sprintf("%s holds the identity %s it had when asked", name, now.id))
		case now.token == before.token:
			same = append(same, fmt.Sprintf("%s: its Secret holds the token it held when asked (identity %s, then %s)",
				name, before.id, now.id))
		default:
			n++
		}
	}
	slices.Sort(same)
	return n, same, nil
}

// requests is how many rotation requests were sent.
func (p *rotationPlan) requests() int { return p.sent }

// twice is how many accounts were asked to rotate more than once.
func (p *rotationPlan) twice() int {
	count := map[int]int{}
	for _, accounts := range p.rounds {
		for _, i := range accounts {
			count[i]++
		}
	}
	n := 0
	for _, c := range count {
		if c > 1 {
			n++
		}
	}
	return n
}
