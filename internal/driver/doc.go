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

// Package driver is the one reconcile loop every dfns-operator kind runs: finalizer, ownership
// proof and claims, the create-pending mark, the create, the one-time Secret, recording the ID,
// approvals, drift, deletion per policy, conditions, events and the single status write. Kinds
// plug in as External adapters. The package never imports the Dfns client: an ErrorClassifier
// tells it what the client's errors mean. docs/architecture.md walks through the protocol.
package driver
