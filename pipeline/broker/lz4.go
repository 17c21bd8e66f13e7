package broker

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lz4Codec writes and reads the LZ4 batches of Hookline's own writers and
// readers (kgo.WithCompressor, kgo.WithDecompressor). Its frames are the
// ones every Kafka client reads, written so that reading them costs less
// than kgo's defaults:
//
//   - the frame carries its content size, so a reader makes the batch's
//     buffer once at its size and decompresses each 64 KiB block straight
//     into it (kgo's default grows a pooled buffer and copies it out);
//   - no content checksum: Kafka's batch CRC already covers the compressed
//     bytes, and the xxHash of every batch, written and read, was 2% of
//     serve's CPU;
//   - 64 KiB blocks, not 4 MiB: a writer holds 64 KiB instead of 4 MiB
//     (several held 16 MiB of serve's heap in a burst), and LZ4 matches
//     reach back 64 KiB anyway.
//
// A frame without a content size (another producer's) is read by kgo's
// default decompressor, as is every other codec.
type lz4Codec struct {
	writers  sync.Pool
	readers  sync.Pool
	fallback kgo.Decompressor
}

// maxLZ4Content bounds the content size a frame may claim before the
// reader makes a buffer of it; a larger claim goes to kgo's decompressor,
// which reads in steps and bounds what it makes.
const maxLZ4Content = 64 << 20

var codec = &lz4Codec{
	writers: sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
			panic(err) // constant options
		}
		return w
	}},
	readers:  sync.Pool{New: func() any { return &lz4Reader{r: lz4.NewReader(nil)} }},
	fallback: kgo.DefaultDecompressor(),
}

type lz4Reader struct {
	r   *lz4.Reader
	src bytes.Reader
	one [1]byte
}

// Compress is kgo.Compressor: an LZ4 frame of src in dst.
func (c *lz4Codec) Compress(dst *bytes.Buffer, src []byte, _ ...kgo.CompressFlag) ([]byte, kgo.CompressionCodecType) {
	w := c.writers.Get().(*lz4.Writer)
	defer c.writers.Put(w)
	w.Reset(dst)
	if err := w.Apply(lz4.SizeOption(uint64(len(src)))); err != nil {
		return nil, kgo.CodecError
	}
	if _, err := w.Write(src); err != nil {
		return nil, kgo.CodecError
	}
	if err := w.Close(); err != nil {
		return nil, kgo.CodecError
	}
	return dst.Bytes(), kgo.CodecLz4
}

// Decompress is kgo.Decompressor.
func (c *lz4Codec) Decompress(src []byte, codecType kgo.CompressionCodecType) ([]byte, error) {
	if codecType != kgo.CodecLz4 {
		return c.fallback.Decompress(src, codecType)
	}
	rd := c.readers.Get().(*lz4Reader)
	defer c.readers.Put(rd)
	rd.src.Reset(src)
	rd.r.Reset(&rd.src)
	if _, err := rd.r.Read(nil); err != nil { // reads the frame's header
		return nil, err
	}
	size := rd.r.Size()
	if size <= 0 || size > maxLZ4Content {
		return c.fallback.Decompress(src, codecType)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(rd.r, out); err != nil {
		return nil, err
	}
	// The frame ends here: reading on checks its end mark and size.
	switch n, err := rd.r.Read(rd.one[:]); {
	case n > 0:
		return nil, errLZ4Size
	case err != nil && err != io.EOF:
		return nil, err
	}
	return out, nil
}

var errLZ4Size = errors.New("lz4: frame holds more than its content size")
