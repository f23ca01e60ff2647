package front

import (
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
)

// A leaf with less than a quarter of its life left is replaced; until then
// the cached one is served.
func TestLeafRenewal(t *testing.T) {
	t.Parallel()
	ca, err := crypto.NewCA("agw test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const testHost = "api.example.com"
	now := time.Now()
	cc := newCertCache(ca, func() time.Time { return now })
	c1, err := cc.get(testHost)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(leafValidity * 70 / 100)
	if c2, _ := cc.get(testHost); c2 != c1 {
		t.Error("leaf renewed with 30% of its life left")
	}
	now = now.Add(leafValidity * 10 / 100)
	if c3, _ := cc.get(testHost); c3 == c1 {
		t.Error("leaf not renewed with 20% of its life left")
	}
}
