package badgerstore

import (
	"fmt"
	"testing"
)

// TestNameCacheAgrees: the cache answers as indexable does, also once full.
func TestNameCacheAgrees(t *testing.T) {
	t.Parallel()
	c := nameCache{}
	names := []string{"", "bot", "Bot", "a/b", "-x", "x-", string(make([]byte, 63)), "a234567890123456789012345678901234567890123456789012345678901234"}
	for i := range 3 * maxCachedNames {
		n := names[i%len(names)]
		if i%2 == 1 {
			n = fmt.Sprint(n, i) // many names, to fill the cache
		}
		if got, want := c.indexable(n), indexable(n); got != want {
			t.Fatalf("indexable(%q) = %v through the cache, %v without", n, got, want)
		}
		if len(c) > maxCachedNames {
			t.Fatalf("cache holds %d names, more than %d", len(c), maxCachedNames)
		}
	}
}
