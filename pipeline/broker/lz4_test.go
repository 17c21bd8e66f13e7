package broker

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// jsonBatch is bytes like a record batch of n job records: JSON with a
// ticket in each, partly random so that it neither vanishes nor refuses to
// compress.
func jsonBatch(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"delivery_id":"dlv_%016x","webhook_id":"wh_1","tenant":"acme","event_ids":["evt_%016x"],"event_type":"ticket.updated","payload":{"id":"tkt_%d","price":%d,"seat":"%c%d","notes":"`,
			rng.Uint64(), rng.Uint64(), i, rng.IntN(100000), 'A'+rng.IntN(26), rng.IntN(900))
		for range 800 {
			b.WriteByte("abcdefghij klmnopqrstuvwxyz"[rng.IntN(27)])
		}
		b.WriteString(`"}}`)
	}
	return b.Bytes()
}

// compressWith is c's LZ4 frame of src.
func compressWith(t testing.TB, c kgo.Compressor, src []byte) []byte {
	t.Helper()
	return compressWith2(t, c, src, kgo.CodecLz4)
}

func TestLZ4FramesReadBackEverywhere(t *testing.T) {
	for _, n := range []int{0, 1, 40, 1000} { // empty, under a block, many blocks
		src := jsonBatch(n)
		frame := compressWith(t, codec, src)
		if n >= 40 && len(frame) >= len(src) {
			t.Errorf("%d records: frame of %d bytes for %d: not compressed", n, len(frame), len(src))
		}
		// The frame descriptor's flags (LZ4 frame format): content size
		// (0x08) so a reader sizes its buffer once, no content checksum
		// (0x04) for Kafka's CRC already covers the batch.
		if flg := frame[4]; n > 0 && (flg&0x08 == 0 || flg&0x04 != 0) {
			t.Errorf("%d records: frame flags %#x, want a content size and no checksum", n, flg)
		}
		got, err := codec.Decompress(frame, kgo.CodecLz4)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d records: our reader: err %v, equal %v", n, err, bytes.Equal(got, src))
		}
		// Clients we did not write: kgo's default and kafka-go's.
		got, err = kgo.DefaultDecompressor().Decompress(frame, kgo.CodecLz4)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d records: kgo's reader: err %v, equal %v", n, err, bytes.Equal(got, src))
		}
		got, err = io.ReadAll(compress.Lz4.Codec().NewReader(bytes.NewReader(frame)))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d records: kafka-go's reader: err %v, equal %v", n, err, bytes.Equal(got, src))
		}
	}
}

func TestLZ4ReadsOtherProducersFrames(t *testing.T) {
	src := jsonBatch(300)
	// kgo's default writer: 4 MiB blocks, a checksum, no content size.
	frame := compressWith(t, defaultCompressor(t, kgo.Lz4Compression()), src)
	got, err := codec.Decompress(frame, kgo.CodecLz4)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("kgo's frame: err %v, equal %v", err, bytes.Equal(got, src))
	}
	// Other codecs go to kgo's decompressor.
	snappy := compressWith2(t, defaultCompressor(t, kgo.SnappyCompression()), src, kgo.CodecSnappy)
	if got, err := codec.Decompress(snappy, kgo.CodecSnappy); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("snappy: err %v, equal %v", err, bytes.Equal(got, src))
	}
	if got, err := codec.Decompress(src, kgo.CodecNone); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("none: err %v", err)
	}
}

func defaultCompressor(t testing.TB, c kgo.CompressionCodec) kgo.Compressor {
	t.Helper()
	comp, err := kgo.DefaultCompressor(c)
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

func compressWith2(t testing.TB, c kgo.Compressor, src []byte, want kgo.CompressionCodecType) []byte {
	t.Helper()
	out, codecType := c.Compress(new(bytes.Buffer), src)
	if codecType != want {
		t.Fatalf("codec %d, want %d", codecType, want)
	}
	return bytes.Clone(out)
}

// A broken frame is an error, never a panic or a batch of wrong bytes; a
// frame that claims more content than it holds, or less, too.
func TestLZ4RefusesBrokenFrames(t *testing.T) {
	src := jsonBatch(200)
	frame := compressWith(t, codec, src)
	cut := frame[:len(frame)/2]
	if _, err := codec.Decompress(cut, kgo.CodecLz4); err == nil {
		t.Error("a frame cut in half decompressed")
	}
	garbage := bytes.Clone(frame)
	for i := 20; i < len(garbage); i += 7 {
		garbage[i] ^= 0x5a
	}
	if got, err := codec.Decompress(garbage, kgo.CodecLz4); err == nil && bytes.Equal(got, src) {
		t.Error("a scrambled frame decompressed to the batch")
	}
	for _, claim := range []uint64{uint64(len(src)) - 10, uint64(len(src)) + 10, 1 << 40} {
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.SizeOption(claim)); err != nil {
			t.Fatal(err)
		}
		w.Write(src)
		w.Close() // refuses the wrong size itself, after writing the blocks
		if got, err := codec.Decompress(b.Bytes(), kgo.CodecLz4); err == nil {
			t.Errorf("a frame claiming %d bytes for %d decompressed to %d", claim, len(src), len(got))
		}
	}
	if _, err := codec.Decompress([]byte("not lz4 at all"), kgo.CodecLz4); err == nil {
		t.Error("bytes without a frame decompressed")
	}
}

// BenchmarkLZ4 writes and reads back one batch of 200 job records (about
// 200 KiB) as the writers and readers do: kgo's default codec against
// lz4Codec. Guards the issue-23 lever (bench/micro.txt).
func BenchmarkLZ4(b *testing.B) {
	src := jsonBatch(200)
	for _, c := range []struct {
		name string
		comp kgo.Compressor
		dec  kgo.Decompressor
	}{
		{"kgo-default", defaultCompressor(b, kgo.Lz4Compression()), kgo.DefaultDecompressor()},
		{"hookline", codec, codec},
	} {
		b.Run(c.name, func(b *testing.B) {
			var dst bytes.Buffer
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst.Reset()
				frame, _ := c.comp.Compress(&dst, src)
				out, err := c.dec.Decompress(frame, kgo.CodecLz4)
				if err != nil || len(out) != len(src) {
					b.Fatal(err)
				}
			}
		})
	}
}
