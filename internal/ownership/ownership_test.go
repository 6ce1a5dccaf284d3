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

package ownership

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func testKey(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyRefusesShortKeys(t *testing.T) {
	if _, err := NewKey(make([]byte, MinKeyLen-1)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}

func TestProofIsBoundToEverything(t *testing.T) {
	k := testKey(t, 1)
	s := Subject{Connection: "ClusterDfnsConnection/default", Kind: "DfnsPermission", Namespace: "a", Name: "b"}
	proof := k.ProveID(s, "pm-1")
	if !k.OwnsID(s, "pm-1", proof) {
		t.Fatal("a proof does not verify for its own subject")
	}
	others := map[string]func() bool{
		"other ID":         func() bool { return k.OwnsID(s, "pm-2", proof) },
		"other namespace":  func() bool { o := s; o.Namespace = "c"; return k.OwnsID(o, "pm-1", proof) },
		"other name":       func() bool { o := s; o.Name = "c"; return k.OwnsID(o, "pm-1", proof) },
		"other kind":       func() bool { o := s; o.Kind = "DfnsPolicy"; return k.OwnsID(o, "pm-1", proof) },
		"other connection": func() bool { o := s; o.Connection = "x"; return k.OwnsID(o, "pm-1", proof) },
		"other key":        func() bool { return testKey(t, 2).OwnsID(s, "pm-1", proof) },
		"no ID":            func() bool { return k.OwnsID(s, "", k.ProveID(s, "")) },
		"no proof":         func() bool { return k.OwnsID(s, "pm-1", "") },
		"nil key":          func() bool { var nk *Key; return nk.OwnsID(s, "pm-1", proof) },
		// Moving a character between the namespace and the name must not keep the proof valid.
		"shifted boundary": func() bool {
			return k.OwnsID(Subject{Connection: s.Connection, Kind: s.Kind, Namespace: "ab", Name: ""}, "pm-1", proof)
		},
		"mark as ID proof": func() bool {
			v := k.EncodeMark(s, Mark{At: time.Unix(0, 0), Name: "pm-1", UID: "u"})
			return k.OwnsID(s, "pm-1", strings.Fields(v)[1])
		},
	}
	for name, f := range others {
		if f() {
			t.Errorf("%s: the proof verified", name)
		}
	}
}

func TestMarkRoundTripAndForgery(t *testing.T) {
	k := testKey(t, 1)
	s := Subject{Kind: "DfnsServiceAccount", Namespace: "a", Name: "b"}
	at := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	v := k.EncodeMark(s, Mark{At: at, Name: "a/b.x y", UID: "uid-1"})
	m, ok := k.DecodeMark(s, "uid-1", v)
	if !ok || m.Name != "a/b.x y" || !m.At.Equal(at) {
		t.Fatalf("DecodeMark(%q) = %+v, %t", v, m, ok)
	}
	forged := []string{
		"",
		"2026-11-30T04:00:00Z",
		at.Format(time.RFC3339) + " v1.AAAA other/name",
		strings.Replace(v, "a/b.x y", "c/d.x y", 1),
		strings.Replace(v, "04:00:00", "05:00:00", 1),
	}
	for _, f := range forged {
		if _, ok := k.DecodeMark(s, "uid-1", f); ok {
			t.Errorf("forged mark %q was accepted", f)
		}
	}
	if _, ok := k.DecodeMark(Subject{Kind: "DfnsServiceAccount", Namespace: "a", Name: "c"}, "uid-1", v); ok {
		t.Error("a mark copied to another resource was accepted")
	}
	if _, ok := k.DecodeMark(s, "uid-2", v); ok {
		t.Error("a mark copied to the same name made again (another UID) was accepted")
	}
}
