package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// run is one driver output line, as the report needs it.
type run struct {
	Target   string             `json:"target"`
	Workload string             `json:"workload"`
	Variant  string             `json:"variant"`
	Metrics  map[string]float64 `json:"metrics"`
	Error    string             `json:"error"`
	Failed   bool               `json:"failed"`
}

type key struct{ workload, variant, target string }

// results groups runs by (workload, variant, target).
type results struct {
	runs     map[key][]run
	variants map[string][]string // workload -> variants in the order first recorded
}

func readResults(path string) (*results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs := &results{runs: map[key][]run{}, variants: map[string][]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), base.LoadgenResultLineBytesMax+1) // +1: the scanner wants room past the longest line
	for line := 1; sc.Scan(); line++ {
		var r run
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		k := key{r.Workload, r.Variant, r.Target}
		if !slices.Contains(rs.variants[r.Workload], r.Variant) {
			rs.variants[r.Workload] = append(rs.variants[r.Workload], r.Variant)
		}
		rs.runs[k] = append(rs.runs[k], r)
	}
	return rs, sc.Err()
}

// cell is the summary of one metric over the passing runs of one key.
type cell struct {
	s       loadgen.Summary
	failed  int // runs whose accounting failed or that broke
	present bool
}

func (rs *results) cell(k key, metric string) cell {
	var xs []float64
	c := cell{}
	for _, r := range rs.runs[k] {
		c.present = true
		if r.Failed || r.Error != "" {
			c.failed++
			continue
		}
		if v, ok := r.Metrics[metric]; ok {
			xs = append(xs, v)
		}
	}
	c.s = loadgen.Summarize(xs)
	return c
}
