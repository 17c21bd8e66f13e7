package matcher

import "github.com/hookline/hookline/schemas"

// PropagatesTo lists the resources whose include_related webhooks a
// trigger on resource also fires (schemas' related-resource table).
func PropagatesTo(resource, trigger string) []string {
	return schemas.PropagatesTo(resource, trigger)
}
