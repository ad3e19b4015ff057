package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// plainBatch builds an uncompressed batch of n records with timestamps
// 1000, 1001, ... and values "value-i".
func plainBatch(t testing.TB, n int) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Begin(nil, batch.Header{BaseOffset: 40, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 3})
	for i := range n {
		if err := bld.Add(1000+int64(i), []byte("k"), []byte(fmt.Sprintf("value-%d", i)),
			[]batch.RecordHeader{{Key: []byte("h"), Value: []byte{byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compressBatch turns an uncompressed batch into the batch a Kafka client
// sends with codec: the same header with the codec bits set, the records
// compressed, the length and CRC for the new bytes.
func compressBatch(t testing.TB, codec int, plain []byte) []byte {
	t.Helper()
	out := append(bytes.Clone(plain[:batch.HeaderSize]), compressWith(t, codec, plain[batch.HeaderSize:])...)
	attrs := binary.BigEndian.Uint16(out[offAttributes:])
	binary.BigEndian.PutUint16(out[offAttributes:], attrs&^codecBits|uint16(codec))
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-batch.LogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], batch.Checksum(out[batch.CRCStart:]))
	return out
}

func TestDecompressBatchGivesTheUncompressedBatchForEveryCodec(t *testing.T) {
	plain := plainBatch(t, 20)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			comp := compressBatch(t, c.codec, plain)
			if _, err := batch.Validate(comp); err != nil {
				t.Fatalf("the compressed batch does not validate: %v", err)
			}
			out, err := DecompressBatch([]byte("pre"), comp, 1<<20)
			if err != nil {
				t.Fatalf("DecompressBatch: %v", err)
			}
			if string(out[:3]) != "pre" || !bytes.Equal(out[3:], plain) {
				t.Fatalf("got %d bytes after the prefix, want the %d bytes of the uncompressed batch", len(out)-3, len(plain))
			}
			if _, err := batch.Validate(out[3:]); err != nil {
				t.Errorf("the copy does not validate: %v", err)
			}
		})
	}
}

func TestDecompressBatchCopiesAnUncompressedBatch(t *testing.T) {
	plain := plainBatch(t, 3)
	out, err := DecompressBatch(nil, plain, 0)
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("got %d bytes, %v; want the batch itself", len(out), err)
	}
	out[batch.HeaderSize] ^= 0xff
	if bytes.Equal(out, plain) {
		t.Errorf("the copy aliases the input")
	}
}

// TestDecompressBatchLimitEdge also pins a bug: with a limit under 1 KiB,
// zstd refused valid output, because every frame declares a window of at
// least 1 KiB and the decoder compared it with the limit.
func TestDecompressBatchLimitEdge(t *testing.T) {
	plain := plainBatch(t, 50)
	records := len(plain) - batch.HeaderSize
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			comp := compressBatch(t, c.codec, plain)
			if _, err := DecompressBatch(nil, comp, records); err != nil {
				t.Errorf("records exactly at the limit: %v, want accepted", err)
			}
			out, err := DecompressBatch([]byte("keep"), comp, records-1)
			if base.CodeOf(err) != base.CodeTooLarge {
				t.Errorf("records one byte over the limit: got %v, want too_large", err)
			}
			if string(out) != "keep" {
				t.Errorf("on error the result is %q, want dst", out)
			}
		})
	}
}

func TestDecompressBatchRefusesBombsWithoutAllocatingThem(t *testing.T) {
	// 64 MiB of zeros compress to a few KiB; the 1 MiB limit stops every
	// decoder long before the output is allocated.
	zeros := make([]byte, 64<<20)
	plain := plainBatch(t, 1)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			bomb := append(bytes.Clone(plain[:batch.HeaderSize]), compressWith(t, c.codec, zeros)...)
			binary.BigEndian.PutUint16(bomb[offAttributes:], uint16(c.codec))
			binary.BigEndian.PutUint32(bomb[offLength:], uint32(len(bomb)-batch.LogOverhead))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecompressBatch(nil, bomb, 1<<20)
			runtime.ReadMemStats(&after)
			if base.CodeOf(err) != base.CodeTooLarge {
				t.Fatalf("a %d-byte batch inflating to 64 MiB: got %v, want too_large", len(bomb), err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("refusing it allocated %d bytes, want well under the 64 MiB it inflates to", got)
			}
		})
	}
}

func TestDecompressBatchRefusesMalformedInput(t *testing.T) {
	plain := plainBatch(t, 2)
	comp := compressBatch(t, batch.CompressionGzip, plain)
	if _, err := DecompressBatch(nil, comp[:len(comp)-1], 1<<20); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("truncated batch: got %v, want corrupt", err)
	}
	if _, err := DecompressBatch(nil, append(bytes.Clone(comp), 0), 1<<20); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("trailing byte: got %v, want corrupt", err)
	}
	bad := bytes.Clone(comp)
	bad[len(bad)-8] ^= 0xff // the gzip trailer's CRC-32 of the records
	if _, err := DecompressBatch(nil, bad, 1<<20); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("damaged gzip payload: got %v, want corrupt", err)
	}
	odd := bytes.Clone(comp)
	binary.BigEndian.PutUint16(odd[offAttributes:], 6)
	if _, err := DecompressBatch(nil, odd, 1<<20); base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("codec 6: got %v, want not_supported", err)
	}
}

// FuzzDecompressBatch: arbitrary bytes never panic; an uncompressed batch
// is copied as it is, a compressed one becomes an uncompressed batch with a
// valid CRC within the limit.
func FuzzDecompressBatch(f *testing.F) {
	plain := plainBatch(f, 5)
	f.Add(plain)
	for _, c := range codecs {
		f.Add(compressBatch(f, c.codec, plain))
	}
	f.Add(make([]byte, batch.HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 16
		out, err := DecompressBatch(nil, b, limit)
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("on error the result has %d bytes, want dst", len(out))
			}
			return
		}
		if len(out) > batch.HeaderSize+max(limit, len(b)) {
			t.Fatalf("accepted %d bytes past the limit %d", len(out), limit)
		}
		if in, _ := batch.ParseHeader(b); in.Attributes.Compression() == batch.CompressionNone {
			if !bytes.Equal(out, b) {
				t.Fatalf("an uncompressed batch was not copied as it is")
			}
			return // copied unchecked: its CRC is the caller's concern
		}
		h, err := batch.CheckCRC(out)
		if err != nil || h.Attributes.Compression() != batch.CompressionNone {
			t.Fatalf("the copy is not an uncompressed batch: %v, codec %d", err, h.Attributes.Compression())
		}
	})
}
