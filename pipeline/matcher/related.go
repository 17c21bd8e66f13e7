package matcher

// propagation is SPEC §3's related-resource table (OpenTicket): a trigger
// on the key's resource also fires webhooks of the listed resources that
// have include_related, when the event's related list names that resource.
var propagation = map[string]map[string][]string{
	"ticket":  {"create": {"event"}, "update": {"event"}, "delete": {"event"}},
	"product": {"create": {"event"}, "update": {"event"}, "delete": {"event"}},
	"shop":    {"paid": {"event", "ticket", "product"}, "update": {"event"}},
	"order":   {"create": {"event"}, "delete": {"event"}, "scan": {"event", "ticket", "product"}},
}

// PropagatesTo lists the resources whose include_related webhooks a
// trigger on resource also fires.
func PropagatesTo(resource, trigger string) []string {
	return propagation[resource][trigger]
}
