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
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestListCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewListCache[string](time.Minute, nil)
	c.now = func() time.Time { return now }
	lists := 0
	fetch := func(context.Context) ([]string, error) { lists++; return []string{"a"}, nil }

	got, fresh, err := c.Get(ctx, "k", fetch)
	if err != nil || !fresh || len(got) != 1 || lists != 1 {
		t.Fatalf("the first get lists: %v %t %v (%d lists)", got, fresh, err, lists)
	}
	if _, fresh, _ := c.Get(ctx, "k", fetch); fresh || lists != 1 {
		t.Errorf("a get within the TTL reuses the list (%d lists)", lists)
	}
	if _, fresh, _ := c.Get(ctx, "other", fetch); !fresh || lists != 2 {
		t.Errorf("keys are listed apart (%d lists)", lists)
	}
	now = now.Add(time.Minute)
	if _, fresh, _ := c.Get(ctx, "k", fetch); !fresh || lists != 3 {
		t.Errorf("a list as old as the TTL is listed anew (%d lists)", lists)
	}
	c.Invalidate("k")
	if _, fresh, _ := c.Get(ctx, "k", fetch); !fresh || lists != 4 {
		t.Errorf("the operator's own change drops the list (%d lists)", lists)
	}

	racing := func(context.Context) ([]string, error) {
		c.Invalidate("r") // a change made while this list was in flight
		return []string{"stale"}, nil
	}
	if got, _ := c.Fetch(ctx, "r", racing); got[0] != "stale" {
		t.Errorf("fetch returns what it listed, got %v", got)
	}
	if _, fresh, _ := c.Get(ctx, "r", fetch); !fresh {
		t.Errorf("a list fetched before a change is not kept")
	}
	c.Amend("k", func(items []string) []string { return append(items, "b") })
	if got, fresh, _ := c.Get(ctx, "k", fetch); fresh || len(got) != 2 || got[1] != "b" || lists != 5 {
		t.Errorf("an amended list is kept and shows the change: %v %t (%d lists)", got, fresh, lists)
	}
	c.Amend("absent", func(items []string) []string { return append(items, "b") })
	if _, fresh, _ := c.Get(ctx, "absent", fetch); !fresh {
		t.Errorf("amending a list that is not kept makes none up")
	}
	amending := func(context.Context) ([]string, error) {
		c.Amend("m", func(items []string) []string { return items }) // a change while in flight
		return []string{"stale"}, nil
	}
	_, _ = c.Fetch(ctx, "m", amending)
	if _, fresh, _ := c.Get(ctx, "m", fetch); !fresh {
		t.Errorf("a list fetched before an amended change is not kept")
	}
	failing := func(context.Context) ([]string, error) { return nil, errors.New("down") }
	c.Invalidate("k")
	if _, _, err := c.Get(ctx, "k", failing); err == nil {
		t.Errorf("a failed list is an error")
	}
	if _, fresh, _ := c.Get(ctx, "k", fetch); !fresh {
		t.Errorf("a failed list is not kept")
	}
}

// TestListCacheAppend: an appended item shows in the kept list, and a list already handed out
// stays as it was; a list not kept gets nothing made up.
func TestListCacheAppend(t *testing.T) {
	ctx := context.Background()
	c := NewListCache[string](time.Minute, nil)
	lists := 0
	fetch := func(context.Context) ([]string, error) {
		lists++
		return append(make([]string, 0, 8), "a"), nil // room to append in place
	}
	before, _, _ := c.Get(ctx, "k", fetch)
	c.Append("k", "b")
	c.Append("k", "c")
	got, fresh, _ := c.Get(ctx, "k", fetch)
	if fresh || lists != 1 || len(got) != 3 || got[1] != "b" || got[2] != "c" {
		t.Errorf("the kept list shows what was appended, without a list: %v %t (%d lists)", got, fresh, lists)
	}
	if len(before) != 1 || before[0] != "a" {
		t.Errorf("a list handed out before the appends changed: %v", before)
	}
	c.Append("absent", "x")
	if _, fresh, _ := c.Get(ctx, "absent", fetch); !fresh {
		t.Errorf("appending to a list that is not kept makes none up")
	}
}

// TestListCacheSharesOneFetch: drift checks that miss the kept list at the same moment wait for
// one list instead of each listing; only the one that fetched reports it fresh.
func TestListCacheSharesOneFetch(t *testing.T) {
	c := NewListCache[string](time.Minute, nil)
	var lists atomic.Int32
	gate := make(chan struct{})
	fetch := func(ctx context.Context) ([]string, error) {
		lists.Add(1)
		<-gate
		return []string{"a"}, ctx.Err()
	}
	const callers = 8
	var wg sync.WaitGroup
	var fresh atomic.Int32
	for range callers {
		wg.Go(func() {
			got, f, err := c.Get(context.Background(), "k", fetch)
			if err != nil || len(got) != 1 {
				t.Errorf("Get = %v, %v", got, err)
			}
			if f {
				fresh.Add(1)
			}
		})
	}
	// The list returns only once every other caller waits for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		joined := c.joined
		c.mu.Unlock()
		if joined == callers-1 {
			break
		}
		if time.Now().After(deadline) {
			close(gate)
			t.Fatalf("%d of %d callers waited for the list in flight", joined, callers-1)
		}
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	if n := lists.Load(); n != 1 {
		t.Errorf("%d callers made %d lists, want 1", callers, n)
	}
	if n := fresh.Load(); n != 1 {
		t.Errorf("%d callers reported a fresh list, want 1", n)
	}
}

// TestListCacheFind: Find looks items up by field through an index built once per kept list,
// extended by Append and rebuilt after Amend; a list not kept is scanned.
func TestListCacheFind(t *testing.T) {
	ctx := context.Background()
	type item [2]string // ID, name
	filed := 0          // items filed (or scanned) by the index
	c := NewListCache(time.Minute, func(v item) []string { filed++; return v[:] })
	const n = 1000
	lists := 0
	fetch := func(context.Context) ([]item, error) {
		lists++
		all := make([]item, 0, n+8)
		for i := range n {
			all = append(all, item{fmt.Sprintf("id-%d", i), fmt.Sprintf("name-%d", i%(n/2))}) // names twice
		}
		return all, nil
	}
	got, found, fresh, err := c.Find(ctx, "k", 0, "id-7", fetch)
	if err != nil || !found || !fresh || got[0] != "id-7" {
		t.Fatalf("Find = %v %t %t %v", got, found, fresh, err)
	}
	for i := range n {
		if got, found, _, _ := c.Find(ctx, "k", 0, fmt.Sprintf("id-%d", i), fetch); !found || got[0] != fmt.Sprintf("id-%d", i) {
			t.Fatalf("id-%d not found: %v", i, got)
		}
	}
	if filed > n+1 || lists != 1 {
		t.Errorf("%d finds filed %d items and listed %d times; want each item filed once and 1 list", n+1, filed, lists)
	}
	if got, found, _, _ := c.Find(ctx, "k", 1, "name-3", fetch); !found || got[0] != "id-3" {
		t.Errorf("a value shared by two items finds the first: %v %t", got, found)
	}
	if _, found, _, _ := c.Find(ctx, "k", 0, "id-none", fetch); found {
		t.Errorf("an absent ID was found")
	}
	c.Append("k", item{"id-new", "new"})
	if got, found, fresh, _ := c.Find(ctx, "k", 1, "new", fetch); !found || fresh || got[0] != "id-new" || lists != 1 {
		t.Errorf("an appended item is found without a list: %v %t %t (%d lists)", got, found, fresh, lists)
	}
	c.Amend("k", func(all []item) []item { all[7][1] = "renamed"; return all })
	if got, found, _, _ := c.Find(ctx, "k", 1, "renamed", fetch); !found || got[0] != "id-7" {
		t.Errorf("an amended item is found by its new value: %v %t", got, found)
	}
	racing := func(context.Context) ([]item, error) {
		c.Invalidate("r") // a change while this list was in flight: it is not kept
		return []item{{"id-r", "r"}}, nil
	}
	if got, found, _, _ := c.Find(ctx, "r", 0, "id-r", racing); !found || got[0] != "id-r" {
		t.Errorf("a list not kept is scanned: %v %t", got, found)
	}
	// An empty list fetched across a change (not kept) finds nothing, whatever an expired kept
	// list held.
	c.now = func() time.Time { return time.Now().Add(time.Hour) }
	emptied := func(context.Context) ([]item, error) {
		c.Append("k", item{"id-late", "late"})
		return nil, nil
	}
	if got, found, fresh, _ := c.Find(ctx, "k", 0, "id-7", emptied); found || !fresh {
		t.Errorf("an empty fresh list found %v (fresh %t) in the expired one", got, fresh)
	}
}
