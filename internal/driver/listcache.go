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
	"slices"
	"sync"
	"time"
)

// ListCache lets the drift checks of one sync period share one list call per key (a kind, or a
// permission's assignments) instead of one read per object. It is trusted for what it shows.
// Its absences are trusted only for objects the operator cannot have made unseen (no ID, no
// create-pending mark): anything else missing is looked up again in Dfns. The operator's own
// changes are applied to the kept list (amend) when their outcome is known, and drop it
// (invalidate) when it is not.
type ListCache[V any] struct {
	ttl time.Duration
	now func() time.Time
	// fields are what Find looks items up by: fields(v)[f] is item v's value of field f.
	fields func(V) []string

	mu       sync.Mutex
	entries  map[string]listEntry[V]
	versions map[string]uint64 // bumped by invalidate, so a list fetched before a change is not kept
	// inflight is the list Get is fetching per key: the drift checks that miss the kept list at
	// the same moment wait for that one instead of each listing.
	inflight map[string]*flight[V]
	joined   int // calls that waited for another's fetch, for tests
}

// flight is one list in progress; done is closed when items and err are set.
type flight[V any] struct {
	done  chan struct{}
	items []V
	err   error
}

// listEntry is a kept list and when it was fetched, with its index for Find: per field, the
// position of the first item of each value, for the first indexed items.
type listEntry[V any] struct {
	items   []V
	at      time.Time
	index   []map[string]int
	indexed int
}

// NewListCache keeps lists for ttl, normally the sync period. fields, which may be nil, gives
// the values of an item that Find looks it up by (an ID, say), in a fixed order.
func NewListCache[V any](ttl time.Duration, fields func(V) []string) *ListCache[V] {
	return &ListCache[V]{ttl: ttl, now: time.Now, fields: fields, entries: map[string]listEntry[V]{}, versions: map[string]uint64{},
		inflight: map[string]*flight[V]{}}
}

// Find returns the first item of the list under key whose field f has the value v, getting the
// list as Get does (Search tells how it is found).
func (c *ListCache[V]) Find(ctx context.Context, key string, f int, v string,
	fetch func(context.Context) ([]V, error)) (item V, found, fresh bool, err error) {
	items, fresh, err := c.Get(ctx, key, fetch)
	if err != nil {
		return item, false, fresh, err
	}
	item, found = c.Search(key, items, f, v)
	return item, found, fresh, nil
}

// Search returns the first of items, a list Get returned under key, whose field f has the value
// v. When items is the list kept under key, it is searched through an index built at the first
// search after the fetch and extended by Append: the drift checks of 10,000 objects in one list
// each find theirs without scanning the other 9,999 (an item appended since Get may be found).
// Any other list (fetched across a change, so not kept) is scanned. Several searches of one
// list answer from the same list.
func (c *ListCache[V]) Search(key string, items []V, f int, v string) (item V, found bool) {
	if v == "" || len(items) == 0 {
		return item, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, kept := c.entries[key]
	if !kept || len(items) > len(e.items) || &items[0] != &e.items[0] {
		for _, it := range items {
			if c.fields(it)[f] == v {
				return it, true
			}
		}
		return item, false
	}
	if e.index == nil {
		e.index = make([]map[string]int, len(c.fields(item)))
		for i := range e.index {
			e.index[i] = make(map[string]int, len(e.items))
		}
	}
	for ; e.indexed < len(e.items); e.indexed++ {
		for i, val := range c.fields(e.items[e.indexed]) {
			if _, seen := e.index[i][val]; !seen {
				e.index[i][val] = e.indexed
			}
		}
	}
	c.entries[key] = e
	if i, ok := e.index[f][v]; ok {
		return e.items[i], true
	}
	return item, false
}

// Get returns the list under key, fetching it when there is none younger than the TTL; callers
// that miss at the same moment share one fetch. fresh reports whether the list was fetched by
// this call: a list another call was already fetching may predate this one's reason to look.
func (c *ListCache[V]) Get(ctx context.Context, key string, fetch func(context.Context) ([]V, error)) (items []V, fresh bool, err error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.items, false, nil
	}
	if f, ok := c.inflight[key]; ok {
		c.joined++
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.items, false, f.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	f := &flight[V]{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()
	f.items, f.err = c.Fetch(ctx, key, fetch)
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(f.done)
	return f.items, true, f.err
}

// Fetch lists anew and keeps the result, unless the key was invalidated meanwhile.
func (c *ListCache[V]) Fetch(ctx context.Context, key string, fetch func(context.Context) ([]V, error)) ([]V, error) {
	c.mu.Lock()
	version := c.versions[key]
	c.mu.Unlock()
	items, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.versions[key] == version {
		c.entries[key] = listEntry[V]{items: items, at: c.now()}
	}
	return items, nil
}

// Amend applies the operator's own change to the list under key, when one is kept, so that
// the change costs no new list. Like invalidate, it discards lists fetched before the change.
// Use it only for a change whose outcome is known; invalidate after any doubt.
func (c *ListCache[V]) Amend(key string, edit func([]V) []V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[key]++
	if e, ok := c.entries[key]; ok {
		e.items = edit(slices.Clone(e.items)) // callers may still hold the old slice
		e.index, e.indexed = nil, 0
		c.entries[key] = e
	}
}

// Append adds the operator's own new object to the list under key, when one is kept, as Amend
// does, without copying the list: those holding it see only its first len items, which an
// append never changes. Amend copies, which made the creates of a 10,000-item list quadratic.
func (c *ListCache[V]) Append(key string, items ...V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[key]++
	if e, ok := c.entries[key]; ok {
		e.items = append(e.items, items...)
		c.entries[key] = e
	}
}

// Invalidate drops the list under key: the operator has just changed it.
func (c *ListCache[V]) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[key]++
	delete(c.entries, key)
}
