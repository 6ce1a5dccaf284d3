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

// Package ownership proves which resource owns a Dfns object. Everything a tenant can write
// (annotations, labels, owner references, Secrets in its namespace) is a claim; an HMAC keyed
// by a key only the operator can read turns a recorded Dfns ID, or a create-pending mark, into
// proof that this very resource made or adopted the object. docs/architecture.md, "Ownership",
// describes the rules.
//
// The package knows nothing of Kubernetes or Dfns: it signs and checks strings.
package ownership

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// MinKeyLen is the shortest key accepted: 256 bits.
const MinKeyLen = 32

// proofVersion prefixes every proof, so that the scheme can change.
const proofVersion = "v1."

// Key signs and checks proofs. The zero Key is not usable; use NewKey.
type Key struct{ k []byte }

// NewKey returns a Key for the given secret bytes (at least MinKeyLen of them).
func NewKey(secret []byte) (*Key, error) {
	if len(secret) < MinKeyLen {
		return nil, errors.New("the ownership key is shorter than 32 bytes")
	}
	return &Key{k: append([]byte(nil), secret...)}, nil
}

// Subject is the resource a proof belongs to. A proof made for one subject never verifies for
// another: a tenant cannot copy a proof to a resource of another name, kind or namespace.
type Subject struct {
	// Connection names the Dfns connection the object was made through.
	Connection            string
	Kind, Namespace, Name string
}

// sign is the HMAC-SHA256 over the subject, a purpose and a value, each length-prefixed so that
// no two inputs share an encoding.
func (k *Key) sign(s Subject, purpose, value string) string {
	m := hmac.New(sha256.New, k.k)
	for _, part := range []string{purpose, s.Connection, s.Kind, s.Namespace, s.Name, value} {
		var n [4]byte
		l := len(part)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		m.Write(n[:])
		m.Write([]byte(part))
	}
	return proofVersion + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify compares a proof with the expected one in constant time.
func (k *Key) verify(s Subject, purpose, value, proof string) bool {
	if k == nil || proof == "" {
		return false
	}
	return hmac.Equal([]byte(k.sign(s, purpose, value)), []byte(proof))
}

// Purposes keep a proof of one kind from standing in for another.
const (
	purposeID   = "id"
	purposeMark = "create-pending"
)

// ProveID returns the proof that the subject owns the Dfns object id.
func (k *Key) ProveID(s Subject, id string) string { return k.sign(s, purposeID, id) }

// OwnsID reports whether proof proves that the subject owns the Dfns object id.
func (k *Key) OwnsID(s Subject, id, proof string) bool {
	return id != "" && k.verify(s, purposeID, id, proof)
}

// Mark is a create about to be sent: the Dfns name it uses and when it was marked. A mark is
// bound to the resource's UID as well as its subject: copied onto a resource deleted and made
// again under the same name, it no longer verifies. (A proof of an ID, by contrast, survives a
// new UID, so that a backup can be restored.)
type Mark struct {
	At   time.Time
	Name string
	// UID is the resource's UID; it is signed but not written into the annotation.
	UID string
}

// EncodeMark returns the value of a create-pending annotation: "<RFC 3339 time> <proof> <name>".
func (k *Key) EncodeMark(s Subject, m Mark) string {
	at := m.At.UTC().Format(time.RFC3339)
	return at + " " + k.sign(s, purposeMark, markValue(at, m.UID, m.Name)) + " " + m.Name
}

// DecodeMark reads a create-pending annotation of the resource with the given UID; ok is
// false unless its proof is valid for the subject and the UID.
func (k *Key) DecodeMark(s Subject, uid, value string) (m Mark, ok bool) {
	parts := strings.SplitN(value, " ", 3)
	if len(parts) != 3 || parts[2] == "" || uid == "" {
		return Mark{}, false
	}
	at, err := time.Parse(time.RFC3339, parts[0])
	if err != nil || !k.verify(s, purposeMark, markValue(parts[0], uid, parts[2]), parts[1]) {
		return Mark{}, false
	}
	return Mark{At: at, Name: parts[2], UID: uid}, true
}

// markValue is what a mark's proof signs: the time, the UID and the name, length-prefixed.
func markValue(at, uid, name string) string {
	return strconv.Itoa(len(at)) + ":" + at + strconv.Itoa(len(uid)) + ":" + uid + name
}
