package matcher

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/hookline/hookline/condition"
	"github.com/hookline/hookline/schemas"
)

// entry is a webhook ready to match, its condition compiled once.
type entry struct {
	w    *schemas.Webhook
	cond *condition.Program // nil: no condition
	// broken is set for a condition that does not compile (it was stored
	// before it was validated): such a webhook matches nothing.
	broken bool
}

// tenantIndex finds the webhooks an event type can match without looking
// at the others: the cost of matching follows the candidates, not the
// number of webhooks.
type tenantIndex struct {
	src      []schemas.Webhook   // the registry's slice it was built from
	exact    map[string][]*entry // "ticket.created"
	resource map[string][]*entry // "ticket" for "ticket.*"
	all      []*entry            // "*"
	related  bool                // some webhook has include_related
}

// candidates calls fn for every webhook whose events list selects typ (of
// resource res), each once.
func (ti *tenantIndex) candidates(typ, res string, fn func(*entry)) {
	for _, e := range ti.exact[typ] {
		fn(e)
	}
	for _, e := range ti.resource[res] {
		fn(e)
	}
	if res == schemas.OperationalResource {
		return // "*" does not include Hookline's own events
	}
	for _, e := range ti.all {
		fn(e)
	}
}

// index keeps one tenantIndex per tenant, rebuilt when the registry's
// slice for the tenant changes (the registry copies on write, so a change
// is a new slice). Conditions are compiled when a webhook changes, never
// per event.
type index struct {
	webhooks Webhooks

	mu       sync.Mutex
	tenants  map[string]*tenantIndex
	programs map[string]*compiledCond // by webhook id
}

type compiledCond struct {
	src  string
	prog *condition.Program
	err  error
}

func newIndex(w Webhooks) *index {
	return &index{webhooks: w, tenants: map[string]*tenantIndex{}, programs: map[string]*compiledCond{}}
}

func (x *index) forTenant(tenant string) *tenantIndex {
	src := x.webhooks.Webhooks(tenant)
	x.mu.Lock()
	defer x.mu.Unlock()
	if ti := x.tenants[tenant]; ti != nil && sameSlice(ti.src, src) {
		return ti
	}
	ti := x.build(src)
	if len(src) == 0 {
		delete(x.tenants, tenant)
	} else {
		x.tenants[tenant] = ti
	}
	return ti
}

func sameSlice(a, b []schemas.Webhook) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// build indexes a tenant's webhooks. A webhook is listed once: under "*"
// if it has it, else under each resource wildcard, else under each exact
// type not covered by its own wildcard; a webhook with "*" is also listed
// under the Hookline events it names, which "*" does not take.
func (x *index) build(src []schemas.Webhook) *tenantIndex {
	ti := &tenantIndex{src: src, exact: map[string][]*entry{}, resource: map[string][]*entry{}}
	for i := range src {
		w := &src[i]
		if !w.Enabled {
			continue
		}
		e := &entry{w: w}
		if w.Condition != "" {
			c := x.program(w)
			e.cond, e.broken = c.prog, c.err != nil
		}
		ti.related = ti.related || w.IncludeRelated
		events := w.Events
		if contains(w.Events, "*") {
			ti.all = append(ti.all, e)
			// "*" takes every event but Hookline's own, which a webhook
			// gets only by naming them: list it under those it names.
			events = nil
			for _, p := range w.Events {
				if strings.HasPrefix(p, schemas.OperationalResource+".") {
					events = append(events, p)
				}
			}
		}
		wild := map[string]bool{}
		for _, p := range events {
			if res, ok := strings.CutSuffix(p, ".*"); ok && !wild[res] {
				wild[res] = true
				ti.resource[res] = append(ti.resource[res], e)
			}
		}
		seen := map[string]bool{}
		for _, p := range events {
			res, _, _ := strings.Cut(p, ".")
			if !strings.HasSuffix(p, ".*") && !wild[res] && !seen[p] {
				seen[p] = true
				ti.exact[p] = append(ti.exact[p], e)
			}
		}
	}
	return ti
}

// program compiles a webhook's condition, reusing the last compilation
// while the source is unchanged. Called with x.mu held.
func (x *index) program(w *schemas.Webhook) *compiledCond {
	if c, ok := x.programs[w.ID]; ok && c.src == w.Condition {
		return c
	}
	prog, err := condition.Compile(w.Condition)
	c := &compiledCond{src: w.Condition, prog: prog, err: err}
	x.programs[w.ID] = c
	return c
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
