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

	mu       sync.Mutex
	entries  map[string]listEntry[V]
	versions map[string]uint64 // bumped by invalidate, so a list fetched before a change is not kept
}

type listEntry[V any] struct {
	items []V
	at    time.Time
}

func NewListCache[V any](ttl time.Duration) *ListCache[V] {
	return &ListCache[V]{ttl: ttl, now: time.Now, entries: map[string]listEntry[V]{}, versions: map[string]uint64{}}
}

// get returns the list under key, fetching it when there is none younger than the TTL; fresh
// reports whether it was fetched by this call.
func (c *ListCache[V]) Get(ctx context.Context, key string, fetch func(context.Context) ([]V, error)) (items []V, fresh bool, err error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.items, false, nil
	}
	items, err = c.Fetch(ctx, key, fetch)
	return items, true, err
}

// fetch lists anew and keeps the result, unless the key was invalidated meanwhile.
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

// amend applies the operator's own change to the list under key, when one is kept, so that
// the change costs no new list. Like invalidate, it discards lists fetched before the change.
// Use it only for a change whose outcome is known; invalidate after any doubt.
func (c *ListCache[V]) Amend(key string, edit func([]V) []V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[key]++
	if e, ok := c.entries[key]; ok {
		e.items = edit(slices.Clone(e.items)) // callers may still hold the old slice
		c.entries[key] = e
	}
}

// invalidate drops the list under key: the operator has just changed it.
func (c *ListCache[V]) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[key]++
	delete(c.entries, key)
}
