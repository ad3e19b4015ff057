package routing

import (
	"slices"
	"sync"
	"testing"
)

// TestConcurrentRoutesShareATable backs the contract in doc.go: Route only
// reads the table, so routes from many goroutines (each with its own
// Result) may run at once. Under -race any write to shared state fails
// this test; every goroutine must also see the same, correct result.
func TestConcurrentRoutesShareATable(t *testing.T) {
	tbl := richTable(t)
	cases := []struct {
		exchange, key string
		headers       []Field
	}{
		{"logs", "app.web.error", nil},
		{"logs", "app/web/error", []Field{{Key: "b", Value: BoolValue(true)}}},
		{"logs", "other", nil},
		{"d", "k", nil},
		{"", "q1", nil},
	}
	want := make([][]Destination, len(cases))
	for i, c := range cases {
		var res Result
		mustOK(t, tbl.Route(&res, c.exchange, c.key, c.headers))
		want[i] = slices.Clone(res.Destinations)
	}
	if len(want[0]) != 1 || len(want[1]) != 2 || len(want[2]) != 0 {
		t.Fatalf("test setup: sequential routes %v, want 1, 2 and 0 destinations first", want)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			var res Result
			for range 200 {
				for i, c := range cases {
					if err := tbl.Route(&res, c.exchange, c.key, c.headers); err != nil || !slices.Equal(res.Destinations, want[i]) {
						select {
						case errs <- c.exchange + " " + c.key:
						default:
						}
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent route %s: result differs from the sequential one", e)
	}
}
