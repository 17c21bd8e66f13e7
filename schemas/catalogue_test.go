package schemas

import (
	"slices"
	"strings"
	"testing"
)

func TestCatalogueWarnsOfTypesOutsideIt(t *testing.T) {
	if w := CatalogueWarnings([]string{"*", "ticket.*", "ticket.created", "order.scanned", "shop.paid", "hookline.ping"}); len(w) != 0 {
		t.Fatalf("warnings for catalogue types: %v", w)
	}
	w := CatalogueWarnings([]string{"tickt.created", "ticket.paid", "ticket.created"})
	if len(w) != 2 || !strings.Contains(w[0], `"tickt.created"`) || !strings.Contains(w[1], `"ticket.paid"`) || !strings.Contains(w[1], "ticket.updated") {
		t.Fatalf("warnings %q: want one for the unknown resource and one for the unknown type, naming the known ones", w)
	}
}

func TestCatalogueHoldsTheRelatedTable(t *testing.T) {
	c := EventCatalogue()
	if got := PropagatesTo("shop", "paid"); !slices.Equal(got, []string{"event", "ticket", "product"}) {
		t.Fatalf("shop paid propagates to %v", got)
	}
	if len(c.Related) != 11 || len(c.Resources) != 7 {
		t.Fatalf("%d related rows, %d resources", len(c.Related), len(c.Resources))
	}
	i := slices.IndexFunc(c.Resources, func(r CatalogueResource) bool { return r.Resource == "order" })
	if i < 0 || !slices.Contains(c.Resources[i].Types, "order.scanned") {
		t.Fatalf("order's types: %+v", c.Resources[i])
	}
}
