package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/projections/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "attempts.db")
		return func(t *testing.T) projections.Store {
			t.Helper()
			s, err := embedded.Open(path)
			if err != nil {
				t.Fatalf("Open(%s): %v", path, err)
			}
			return s
		}
	})
}
