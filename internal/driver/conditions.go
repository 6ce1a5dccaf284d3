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

package driver

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// Event reasons of changes the operator made in Dfns (Normal events). Warning events use the
// Synced condition's reason.
const (
	// EventCreated: the Dfns object was created.
	EventCreated = "Created"
	// EventUpdated: the Dfns object was changed to match the spec.
	EventUpdated = "Updated"
	// EventDeleted: the Dfns object was deleted, archived or deactivated with the resource.
	EventDeleted = "Deleted"
	// EventAdopted: an existing Dfns object was taken over and its ID recorded.
	EventAdopted = "AdoptedExisting"
	// EventChangePendingApproval: Dfns answered a change with a change request to approve.
	EventChangePendingApproval = "ChangePendingApproval"
	// EventRecreated: the Dfns object was deleted outside the operator and made again.
	EventRecreated = "Recreated"
	// EventOrphanDeleted: an object whose create answer or secret was lost was deleted before
	// a new one was made.
	EventOrphanDeleted = "OrphanDeleted"
	// EventReminted: the Secret was deleted or changed, so a new service account was minted
	// and the old one deleted.
	EventReminted = "Reminted"
	// EventReactivated: the object was found deactivated in Dfns and activated again.
	EventReactivated = "Reactivated"
	// EventDeactivated: the object was deactivated in Dfns as the spec asks.
	EventDeactivated = "Deactivated"
	// EventUnarchived: the object was found archived in Dfns and unarchived.
	EventUnarchived = "Unarchived"
	// EventClaimIgnored: an annotation claimed a Dfns object the resource cannot prove is its
	// own, and the operator did not act on it.
	EventClaimIgnored = "ClaimIgnored"
)

// EventRecorder is the part of client-go's record.EventRecorder the driver uses.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// setCondition sets a condition with the object's generation. It reports whether the
// condition's status, reason or message changed; LastTransitionTime moves only with the status.
func setCondition(obj Object, typ string, status metav1.ConditionStatus, reason, msg string) bool {
	old := meta.FindStatusCondition(obj.Managed().Conditions, typ)
	changed := old == nil || old.Status != status || old.Reason != reason || old.Message != msg
	meta.SetStatusCondition(&obj.Managed().Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration(),
	})
	return changed
}

// setReady marks the object Ready and Synced.
func setReady(obj Object) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAvailable,
		"the Dfns object exists and matches the spec")
	setCondition(obj, v1alpha1.ConditionSynced, metav1.ConditionTrue, v1alpha1.ReasonReconcileSuccess,
		"the last reconcile converged")
}

// setNotReady marks the object not Ready unless it is Ready already: a failure to reach Dfns
// says nothing about the object, and conditions must not flap.
func setNotReady(obj Object, reason, msg string) {
	if meta.IsStatusConditionTrue(obj.Managed().Conditions, v1alpha1.ConditionReady) {
		return
	}
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// notReadyReason is Creating while no Dfns ID is recorded, Unavailable after.
func notReadyReason(obj Object) (string, string) {
	if ExternalID(obj) == "" {
		return v1alpha1.ReasonCreating, "the Dfns object is not created yet"
	}
	return v1alpha1.ReasonUnavailable, "the Dfns object does not match the spec yet"
}

// normal records a Normal event for a change made in Dfns.
func (r *Reconciler[T, O]) normal(obj T, reason, format string, args ...any) {
	r.recorder.Eventf(obj, corev1.EventTypeNormal, reason, format, args...)
}

// warning records a Warning event for a failure.
func (r *Reconciler[T, O]) warning(obj T, reason, msg string) {
	r.recorder.Eventf(obj, corev1.EventTypeWarning, reason, "%s", msg)
}
