package batch

import (
	"strconv"
	"testing"
)

// BenchmarkValidate measures the CRC and record walk the log runs on every
// append: go test -bench Validate ./internal/storage/batch/
func BenchmarkValidate(b *testing.B) {
	for _, size := range []int{128, 1024, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			buf := build(b, Header{}, []rec{{ts: 1, value: make([]byte, size)}})
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := Validate(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild encodes a batch of ten 1 KiB records into a reused buffer.
func BenchmarkBuild(b *testing.B) {
	buf := make([]byte, 0, 16<<10)
	value := make([]byte, 1024)
	var bld Builder
	b.ReportAllocs()
	b.SetBytes(10 * 1024)
	for b.Loop() {
		bld.Begin(buf[:0], Header{})
		for i := range 10 {
			if err := bld.Add(int64(i), nil, value, nil); err != nil {
				b.Fatal(err)
			}
		}
		buf, _ = bld.Finish()
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
