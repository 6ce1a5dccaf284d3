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
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

var _ = Describe("The CRDs", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	DescribeTable("refuse a DfnsServiceAccount the API server can tell is wrong",
		func(mutate func(*v1alpha1.DfnsServiceAccount), message string) {
			sa := newSA(ns, "bad", "payments")
			mutate(sa)
			err := k8sClient.Create(ctx, sa)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("both name and id in permissionRef", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.PermissionRef.ID = "pm-a-b-c" },
			"exactly one of name and id"),
		Entry("neither name nor id in permissionRef", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.PermissionRef = v1alpha1.PermissionRef{} },
			"exactly one of name and id"),
		Entry("a permission ID of the wrong shape", func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Spec.PermissionRef = v1alpha1.PermissionRef{ID: "us-x"}
		}, "permissionRef.id"),
		Entry("daysValid above 730", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.DaysValid = ptr.To[int32](731) }, "daysValid"),
		Entry("daysValid below 1", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.DaysValid = ptr.To[int32](0) }, "daysValid"),
		Entry("an unknown key algorithm", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.KeyAlgorithm = "DSA" }, "keyAlgorithm"),
		Entry("an unknown deletion policy", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.DeletionPolicy = "Archive" }, "deletionPolicy"),
		Entry("a secretName that is no DNS subdomain", func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.SecretName = "Bad_Name" }, "secretName"),
		Entry("a Secret label key that is no qualified name", func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Spec.SecretTemplate.Labels = map[string]v1alpha1.LabelValue{"bad key": "x"}
		}, "label keys must be qualified names"),
		Entry("a Secret label value longer than 63 characters", func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Spec.SecretTemplate.Labels = map[string]v1alpha1.LabelValue{"team": v1alpha1.LabelValue(strings.Repeat("a", 64))}
		}, "labels"),
		Entry("a Secret label value with a space", func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Spec.SecretTemplate.Labels = map[string]v1alpha1.LabelValue{"team": "a b"}
		}, "labels"),
		Entry("a Secret annotation key that is no qualified name", func(sa *v1alpha1.DfnsServiceAccount) {
			sa.Spec.SecretTemplate.Annotations = map[string]string{"-x": "y"}
		}, "annotation keys must be qualified names"),
	)

	It("accepts the Secret metadata the API server accepts", func() {
		sa := newSA(ns, "meta", "nowhere")
		sa.Spec.SecretName = "payments.api-1"
		sa.Spec.SecretTemplate = v1alpha1.SecretTemplate{
			Labels:      map[string]v1alpha1.LabelValue{"app.kubernetes.io/name": "payments", "tier": "", "v": "1.2_3-a"},
			Annotations: map[string]string{"example.com/owner": "team a: any text", "note": ""},
		}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		deleteAndWait(sa)
	})

	It("refuses changes to immutable DfnsServiceAccount fields", func() {
		sa := newSA(ns, "immutable", "nowhere")
		sa.Spec.Name = "fixed"
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		for _, mutate := range []func(*v1alpha1.DfnsServiceAccount){
			func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.Name = "changed" },
			func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.KeyAlgorithm = "Ed25519" },
			func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.PermissionRef = v1alpha1.PermissionRef{Name: "other"} },
			func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.DaysValid = ptr.To[int32](5) },
			func(sa *v1alpha1.DfnsServiceAccount) { sa.Spec.SecretName = "elsewhere" },
		} {
			eventually(func() error {
				fresh := &v1alpha1.DfnsServiceAccount{}
				Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(sa), fresh)).To(Succeed())
				mutate(fresh)
				return k8sClient.Update(ctx, fresh)
			}).Should(And(Satisfy(apierrors.IsInvalid), MatchError(ContainSubstring("immutable"))))
		}
		deleteAndWait(sa)
	})

	DescribeTable("refuse a DfnsPermission the API server can tell is wrong",
		func(ops []v1alpha1.Operation, policy v1alpha1.DeletionPolicy) {
			p := &v1alpha1.DfnsPermission{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"},
				Spec: v1alpha1.DfnsPermissionSpec{Operations: ops, DeletionPolicy: policy}}
			Expect(apierrors.IsInvalid(k8sClient.Create(ctx, p))).To(BeTrue())
		},
		Entry("an unknown operation", []v1alpha1.Operation{"Wallets:Steal"}, v1alpha1.DeletionPolicyDelete),
		Entry("no operations", []v1alpha1.Operation{}, v1alpha1.DeletionPolicyDelete),
		Entry("deletionPolicy Deactivate", []v1alpha1.Operation{tOpRead}, v1alpha1.DeletionPolicyDeactivate),
	)

	DescribeTable("refuse a credential rotation schedule that is not a duration of an hour or more",
		func(every string) {
			c := &v1alpha1.DfnsConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rotating"},
				Spec: v1alpha1.DfnsConnectionSpec{ConnectionSpec: v1alpha1.ConnectionSpec{
					Credentials:        v1alpha1.ConnectionCredentials{SecretRef: &v1alpha1.SecretReference{Name: "creds"}},
					CredentialRotation: &v1alpha1.CredentialRotation{Every: metav1.Duration{}}}}}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
			Expect(err).NotTo(HaveOccurred())
			Expect(unstructured.SetNestedField(u, every, "spec", "credentialRotation", "every")).To(Succeed())
			obj := &unstructured.Unstructured{Object: u}
			obj.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(v1alpha1.KindDfnsConnection))
			Expect(k8sClient.Create(ctx, obj)).To(And(Satisfy(apierrors.IsInvalid), MatchError(ContainSubstring("credentialRotation"))))
		},
		Entry("under an hour", "59m"),
		Entry("zero", "0s"),
		Entry("words", "monthly"),
	)

	It("refuses a DfnsWebhook whose description carries the operator's marker", func() {
		// Another resource would take a webhook carrying its marker for an orphan of its own.
		w := &v1alpha1.DfnsWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marked"},
			Spec: v1alpha1.DfnsWebhookSpec{URL: "https://hooks.example/dfns", Events: []v1alpha1.WebhookEvent{"policy.approval.pending"},
				Description: "payments [dfns-operator 0b7c2a4e-0000-4000-8000-000000000000]"}}
		Expect(k8sClient.Create(ctx, w)).To(And(Satisfy(apierrors.IsInvalid), MatchError(ContainSubstring("marker"))))
	})
})

var _ = Describe("The samples", func() {
	It("apply and become Ready with a usable Secret", func() {
		ns := newNamespace()
		p := &v1alpha1.DfnsPermission{}
		sa := &v1alpha1.DfnsServiceAccount{}
		for file, obj := range map[string]client.Object{"access_v1alpha1_dfnspermission.yaml": p, "access_v1alpha1_dfnsserviceaccount.yaml": sa} {
			b, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			Expect(yaml.UnmarshalStrict(b, obj)).To(Succeed())
			obj.SetNamespace(ns)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		}
		waitReady(p)
		waitReady(sa)
		var s corev1.Secret
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payments-api-dfns"}, &s)).To(Succeed())
		Expect(s.Labels).To(HaveKeyWithValue("app.kubernetes.io/part-of", "payments"))
		By("authenticating with the token; the sample grants wallet operations only")
		_, err := tokenClient(&s).ListPermissions(ctx)
		Expect(dfns.MissingOperation(err)).To(Equal("Permissions:Read"))
	})
})
