package compress

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressWith compresses data the way Kafka clients do for codec.
func compressWith(t testing.TB, codec int, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case batch.CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case batch.CompressionSnappy:
		return xerial.Encode(nil, data)
	case batch.CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case batch.CompressionZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	}
	return buf.Bytes()
}

var codecs = []struct {
	name  string
	codec int
}{{"gzip", batch.CompressionGzip}, {"snappy", batch.CompressionSnappy}, {"lz4", batch.CompressionLZ4}, {"zstd", batch.CompressionZstd}}

func TestDecompressRoundTripsEveryCodecAppendingToDst(t *testing.T) {
	data := bytes.Repeat([]byte("ferry kafka records "), 5000)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte("prefix")
			out, err := Decompress(bytes.Clone(prefix), c.codec, compressWith(t, c.codec, data), len(data))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if !bytes.Equal(out[:len(prefix)], prefix) || !bytes.Equal(out[len(prefix):], data) {
				t.Errorf("got %d bytes, want the prefix then %d bytes of data", len(out), len(data))
			}
		})
	}
}

func TestDecompressLimitEdge(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 100_000)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			src := compressWith(t, c.codec, data)
			if _, err := Decompress(nil, c.codec, src, len(data)); err != nil {
				t.Errorf("output exactly at the limit: %v, want accepted", err)
			}
			out, err := Decompress([]byte("keep"), c.codec, src, len(data)-1)
			if base.CodeOf(err) != base.CodeTooLarge {
				t.Errorf("output one byte over the limit: got %v, want too_large", err)
			}
			if string(out) != "keep" {
				t.Errorf("on error the returned slice is %q, want dst unchanged", out)
			}
		})
	}
}

func TestDecompressRawSnappyBlock(t *testing.T) {
	data := []byte("librdkafka sends unframed snappy")
	out, err := Decompress(nil, batch.CompressionSnappy, s2.EncodeSnappy(nil, data), 1<<10)
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("raw snappy: got %q %v, want %q", out, err, data)
	}
}

func TestDecompressRefusesGarbageAndUnknownCodecs(t *testing.T) {
	garbage := []byte("this is not compressed data at all, in any format")
	for _, c := range codecs {
		if _, err := Decompress(nil, c.codec, garbage, 1<<20); base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("%s garbage: got %v, want corrupt", c.name, err)
		}
	}
	if _, err := Decompress(nil, 5, nil, 1); base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("codec 5: got %v, want not_supported", err)
	}
}

func TestSnappyDeclaredSizeIsCheckedBeforeAllocating(t *testing.T) {
	// A raw snappy block header claiming 1 GiB, and nothing else.
	claim := binary.AppendUvarint(nil, 1<<30)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := Decompress(nil, batch.CompressionSnappy, claim, 1<<20); base.CodeOf(err) != base.CodeTooLarge {
			t.Fatalf("got %v, want too_large", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("refusing a 1 GiB claim 10 times allocated %d bytes, want only the errors'", got)
	}
	// Framed: many chunks each claiming 64 MiB.
	framed := bytes.Clone(xerialHeader)
	for range 4 {
		chunk := binary.AppendUvarint(nil, 64<<20)
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(chunk)))
		framed = append(framed, chunk...)
	}
	if _, err := Decompress(nil, batch.CompressionSnappy, framed, 1<<20); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("framed claims over the limit: got %v, want too_large", err)
	}
}

func FuzzDecompress(f *testing.F) {
	data := bytes.Repeat([]byte("abc"), 100)
	for _, c := range codecs {
		f.Add(byte(c.codec), compressWith(f, c.codec, data))
	}
	f.Add(byte(batch.CompressionSnappy), binary.AppendUvarint(nil, 1<<31))
	f.Add(byte(batch.CompressionSnappy), append(bytes.Clone(xerialHeader), 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, codec byte, src []byte) {
		const limit = 1 << 16
		out, err := Decompress([]byte("x"), int(codec%6), src, limit)
		if err == nil && len(out)-1 > limit {
			t.Fatalf("decompressed %d bytes past the limit %d", len(out)-1, limit)
		}
		if err != nil && string(out) != "x" {
			t.Fatalf("on error the result is %q, want dst", out)
		}
	})
}

func BenchmarkDecompress64KiB(b *testing.B) {
	data := bytes.Repeat([]byte("kafka record value of some length, "), 64<<10/35)
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			src := compressWith(b, c.codec, data)
			buf := make([]byte, 0, len(data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Decompress(buf[:0], c.codec, src, len(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
