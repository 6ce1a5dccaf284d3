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
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// Kind names, as status and references spell them.
const (
	kindServiceAccount = "DfnsServiceAccount"
	kindPAT            = "DfnsPersonalAccessToken"
	kindPermission     = "DfnsPermission"
	kindAssignment     = "DfnsPermissionAssignment"
	kindWebhook        = "DfnsWebhook"
	kindPolicy         = "DfnsPolicy"
	kindUser           = "DfnsUser"
	kindSecret         = "Secret"
)

// kindInfo is one of the operator's kinds: its names as kubectl accepts them (the CRD's kind,
// plural, singular and short name) and how to read it.
type kindInfo struct {
	kind       string
	plural     string
	short      string
	namespaced bool
	// rotates is true for the kinds the access.dfns.io/rotate annotation acts on.
	rotates bool
	newObj  func() client.Object
	newList func() client.ObjectList
}

// managedKinds are the kinds that manage a Dfns object, in the order listings show them.
var managedKinds = []kindInfo{
	{kind: kindServiceAccount, plural: "dfnsserviceaccounts", short: "dfnssa", namespaced: true, rotates: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsServiceAccount{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsServiceAccountList{} }},
	{kind: kindPAT, plural: "dfnspersonalaccesstokens", short: "dfnspat", namespaced: true, rotates: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsPersonalAccessToken{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsPersonalAccessTokenList{} }},
	{kind: kindPermission, plural: "dfnspermissions", short: "dfnsperm", namespaced: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsPermission{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsPermissionList{} }},
	{kind: kindAssignment, plural: "dfnspermissionassignments", short: "dfnsassign", namespaced: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsPermissionAssignment{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsPermissionAssignmentList{} }},
	{kind: kindWebhook, plural: "dfnswebhooks", short: "dfnswh", namespaced: true, rotates: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsWebhook{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsWebhookList{} }},
	{kind: kindPolicy, plural: "dfnspolicies", short: "dfnspol", namespaced: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsPolicy{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsPolicyList{} }},
	{kind: kindUser, plural: "dfnsusers", short: "dfnsuser", namespaced: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsUser{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsUserList{} }},
}

// connectionKinds are the kinds of connection.
var connectionKinds = []kindInfo{
	{kind: v1alpha1.KindDfnsConnection, plural: "dfnsconnections", namespaced: true,
		newObj:  func() client.Object { return &v1alpha1.DfnsConnection{} },
		newList: func() client.ObjectList { return &v1alpha1.DfnsConnectionList{} }},
	{kind: v1alpha1.KindClusterDfnsConnection, plural: "clusterdfnsconnections",
		newObj:  func() client.Object { return &v1alpha1.ClusterDfnsConnection{} },
		newList: func() client.ObjectList { return &v1alpha1.ClusterDfnsConnectionList{} }},
}

// allKinds lists every kind the plugin knows.
func allKinds() []kindInfo {
	return append(append([]kindInfo{}, managedKinds...), connectionKinds...)
}

// resolveKind finds the kind a user typed, as kubectl would: the kind, its plural, singular
// or short name, in any case, optionally followed by the group (".access.dfns.io") or the
// version and group (".v1alpha1.access.dfns.io").
func resolveKind(typed string) (kindInfo, error) {
	name := strings.ToLower(typed)
	group := "." + v1alpha1.GroupVersion.Group
	name = strings.TrimSuffix(name, group)
	name = strings.TrimSuffix(name, "."+v1alpha1.GroupVersion.Version)
	for _, k := range allKinds() {
		if name == strings.ToLower(k.kind) || name == k.plural || (k.short != "" && name == k.short) {
			return k, nil
		}
	}
	names := make([]string, 0, len(managedKinds)+len(connectionKinds))
	for _, k := range allKinds() {
		n := k.plural
		if k.short != "" {
			n += " (" + k.short + ")"
		}
		names = append(names, n)
	}
	return kindInfo{}, fmt.Errorf("%q is not a kind of dfns-operator; one of: %s", typed, strings.Join(names, ", "))
}

// parseRef reads "KIND/NAME", or "KIND" and "NAME" as two arguments, as kubectl does.
func parseRef(args []string) (kindInfo, string, error) {
	var kindArg, name string
	switch len(args) {
	case 1:
		var ok bool
		kindArg, name, ok = strings.Cut(args[0], "/")
		if !ok {
			return kindInfo{}, "", fmt.Errorf("expected KIND/NAME or KIND NAME, got %q", args[0])
		}
	case 2:
		kindArg, name = args[0], args[1]
	default:
		return kindInfo{}, "", fmt.Errorf("expected KIND/NAME or KIND NAME, got %d arguments", len(args))
	}
	if name == "" || strings.Contains(name, "/") {
		return kindInfo{}, "", fmt.Errorf("expected KIND/NAME or KIND NAME, got %q", strings.Join(args, " "))
	}
	k, err := resolveKind(kindArg)
	return k, name, err
}

// managedObject is what every kind that manages a Dfns object shares.
type managedObject interface {
	client.Object
	Managed() *v1alpha1.ManagedStatus
	GetDeletionPolicy() v1alpha1.DeletionPolicy
	GetStatusID() string
	GetConnectionRef() v1alpha1.ConnectionReference
}

// kindOf returns the Kind of one of the operator's objects, or of a Secret.
func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *v1alpha1.DfnsServiceAccount:
		return kindServiceAccount
	case *v1alpha1.DfnsPersonalAccessToken:
		return kindPAT
	case *v1alpha1.DfnsPermission:
		return kindPermission
	case *v1alpha1.DfnsPermissionAssignment:
		return kindAssignment
	case *v1alpha1.DfnsWebhook:
		return kindWebhook
	case *v1alpha1.DfnsPolicy:
		return kindPolicy
	case *v1alpha1.DfnsUser:
		return kindUser
	case *v1alpha1.DfnsConnection:
		return v1alpha1.KindDfnsConnection
	case *v1alpha1.ClusterDfnsConnection:
		return v1alpha1.KindClusterDfnsConnection
	}
	return obj.GetObjectKind().GroupVersionKind().Kind
}
