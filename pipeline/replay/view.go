package replay

import (
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/schemas"
)

// view shows a matcher only the webhooks a replay names, in their current
// configuration, and only in the replay's tenant. It is used by one runner
// goroutine, so it needs no lock.
type view struct {
	src    matcher.Webhooks
	tenant string
	ids    map[string]bool

	last []schemas.Webhook // the source slice out was filtered from
	out  []schemas.Webhook
	init bool
}

func newView(src matcher.Webhooks, tenant string, ids []string) *view {
	v := &view{src: src, tenant: tenant, ids: make(map[string]bool, len(ids))}
	for _, id := range ids {
		v.ids[id] = true
	}
	return v
}

// Webhooks filters the source's slice again only when the source gives a
// new one (it copies on write), and then returns a new slice too: the
// matcher rebuilds its index when, and only when, the slice changes.
func (v *view) Webhooks(tenant string) []schemas.Webhook {
	if tenant != v.tenant {
		return nil
	}
	src := v.src.Webhooks(tenant)
	if v.init && sameSlice(src, v.last) {
		return v.out
	}
	out := make([]schemas.Webhook, 0, len(v.ids))
	for _, w := range src {
		if v.ids[w.ID] {
			out = append(out, w)
		}
	}
	v.last, v.out, v.init = src, out, true
	return out
}

func sameSlice(a, b []schemas.Webhook) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
