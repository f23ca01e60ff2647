package badgerstore_test

import (
	"testing"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
	"github.com/agw-dev/agw/store/storetest"
)

func openTemp(t *testing.T) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}
