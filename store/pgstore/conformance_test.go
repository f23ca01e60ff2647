package pgstore

import (
	"testing"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/storetest"
)

// TestConformance runs the suite every store.Store passes, each store on a
// database of its own.
func TestConformance(t *testing.T) {
	needPostgres(t)
	storetest.RunHarness(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return openStore(t, newDatabase(t), "replica-1") },
		Compact: func(t *testing.T, s store.Store, keepAfter store.Revision) {
			if _, err := s.(*Store).compactThrough(t.Context(), keepAfter); err != nil {
				t.Fatal(err)
			}
		},
	})
}
