package hookline_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hookline/hookline/"

// layers, lowest first: a package may import packages of its own layer or
// below, never above (docs/DESIGN.md, "Where things live").
var layers = []struct {
	name     string
	prefixes []string
}{
	{"languages and signatures", []string{"condition", "payload", "sealing", "signing"}},
	{"wire contracts", []string{"schemas"}},
	{"shared packages", []string{"pipeline/broker", "pipeline/records", "pipeline/stage", "pipeline/table", "delivery", "projections"}},
	{"stages", []string{"pipeline/"}},
	{"api", []string{"api", "client"}},
	{"commands", []string{"cmd/", "bench"}},
}

func layerOf(pkg string) (int, bool) {
	rel, ok := strings.CutPrefix(pkg, module)
	if !ok {
		return 0, false
	}
	for i, l := range layers {
		for _, p := range l.prefixes {
			if rel == strings.TrimSuffix(p, "/") || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/") {
				return i, true
			}
		}
	}
	return -1, true
}

// TestNoPackageImportsALayerAboveItsOwn: the folders say what the system
// does, and the arrows run down (api → pipeline → shared packages →
// schemas), tests included.
func TestNoPackageImportsALayerAboveItsOwn(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		own, ok := layerOf(p.ImportPath)
		if !ok || p.ImportPath == strings.TrimSuffix(module, "/") {
			continue
		}
		if own < 0 {
			t.Errorf("%s is in no layer: add it to the layer list (and to docs/DESIGN.md)", p.ImportPath)
			continue
		}
		checked++
		for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
			l, ok := layerOf(imp)
			if ok && l > own {
				t.Errorf("%s (%s) imports %s (%s), a layer above it", p.ImportPath, layers[own].name, imp, layers[l].name)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages: the listing is wrong", checked)
	}
}
