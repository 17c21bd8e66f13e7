package schemas

import (
	"fmt"
	"slices"
	"strings"
)

// OperationalResource is the resource of Hookline's own events
// (hookline.delivery_failed, hookline.webhook_disabled): delivered only to
// webhooks that name them, "*" does not include them.
const OperationalResource = "hookline"

// Operational event types.
const (
	TypeDeliveryFailed  = "hookline.delivery_failed"
	TypeWebhookDisabled = "hookline.webhook_disabled"
)

// CatalogueResource is one resource of the event catalogue, with its
// triggers and the event types they make.
type CatalogueResource struct {
	Resource string   `json:"resource"`
	Triggers []string `json:"triggers"`
	Types    []string `json:"types"`
	// Operational marks Hookline's own events: webhooks get them only by
	// naming them ("*" does not include them).
	Operational bool `json:"operational,omitempty"`
}

// Propagation is one row of the related-resource table: a trigger on
// Resource also fires the include_related webhooks of To.
type Propagation struct {
	Resource string   `json:"resource"`
	Trigger  string   `json:"trigger"`
	To       []string `json:"to"`
}

// Catalogue is GET /v1/event-types: every resource with its triggers and
// type names, and the related-resource table (SPEC §2, §3).
type Catalogue struct {
	Resources []CatalogueResource `json:"resources"`
	Related   []Propagation       `json:"related"`
}

// catalogueTriggers is the OpenTicket matrix: the triggers each resource
// of a ticket system fires.
var catalogueTriggers = []struct {
	resource    string
	triggers    []string
	operational bool
}{
	{resource: "event", triggers: []string{"create", "update", "delete", "relation", "reorder"}},
	{resource: "ticket", triggers: []string{"create", "update", "delete", "relation", "reorder"}},
	{resource: "product", triggers: []string{"create", "update", "delete", "reorder"}},
	{resource: "order", triggers: []string{"create", "update", "delete", "paid", "scan"}},
	{resource: "scanner", triggers: []string{"create", "update", "delete", "scan"}},
	{resource: "shop", triggers: []string{"create", "update", "delete", "paid"}},
	{resource: "hookline", triggers: []string{"ping", "webhook_disabled", "delivery_failed"}, operational: true},
}

// propagation is SPEC §3's related-resource table (OpenTicket).
var propagation = []Propagation{
	{"ticket", "create", []string{"event"}}, {"ticket", "update", []string{"event"}}, {"ticket", "delete", []string{"event"}},
	{"product", "create", []string{"event"}}, {"product", "update", []string{"event"}}, {"product", "delete", []string{"event"}},
	{"shop", "paid", []string{"event", "ticket", "product"}}, {"shop", "update", []string{"event"}},
	{"order", "create", []string{"event"}}, {"order", "delete", []string{"event"}}, {"order", "scan", []string{"event", "ticket", "product"}},
}

// PropagatesTo lists the resources whose include_related webhooks a
// trigger on resource also fires.
func PropagatesTo(resource, trigger string) []string {
	for _, p := range propagation {
		if p.Resource == resource && p.Trigger == trigger {
			return p.To
		}
	}
	return nil
}

// EventCatalogue returns the catalogue.
func EventCatalogue() Catalogue {
	c := Catalogue{Related: append([]Propagation(nil), propagation...)}
	for _, r := range catalogueTriggers {
		cr := CatalogueResource{Resource: r.resource, Triggers: r.triggers, Operational: r.operational}
		for _, t := range r.triggers {
			cr.Types = append(cr.Types, TypeFor(r.resource, t))
		}
		c.Resources = append(c.Resources, cr)
	}
	return c
}

// CatalogueWarnings names the event patterns of a webhook that match no
// type of the catalogue: they are accepted (producers may send any type),
// but a typo shows.
func CatalogueWarnings(events []string) []string {
	cat := EventCatalogue()
	var out []string
	for _, e := range events {
		if e == "*" {
			continue
		}
		res, typ, _ := strings.Cut(e, ".")
		i := slices.IndexFunc(cat.Resources, func(r CatalogueResource) bool { return r.Resource == res })
		switch {
		case i < 0:
			out = append(out, fmt.Sprintf("events: %q names resource %q, which is not in the catalogue (GET /v1/event-types)", e, res))
		case typ != "*" && !slices.Contains(cat.Resources[i].Types, e):
			out = append(out, fmt.Sprintf("events: %q is not in the catalogue; %s has %s", e, res, strings.Join(cat.Resources[i].Types, ", ")))
		}
	}
	return out
}
