package sink

import (
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdWindow bounds the history of the zstd encoders of Parquet pages. A
// page is compressed on its own, and pages are smaller than this, so a
// larger window would not compress better; it would only cost memory.
const zstdWindow = 1 << 20

// zstdCodec is the ZSTD codec of Parquet pages. Unlike parquet-go's own,
// whose encoders live in a sync.Pool that every garbage collection empties
// (each new encoder allocates an 8 MB history: 480 MB allocated over 200k
// rows, and most of the writer's memory), it keeps the encoders it made,
// with a small window, for the life of the writer.
type zstdCodec struct {
	mu   sync.Mutex
	free []*zstd.Encoder
	dec  *zstd.Decoder
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode appends the compressed form of src to dst[:0]. It is safe for
// concurrent use: each caller takes an encoder of its own.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	var e *zstd.Encoder
	if n := len(c.free); n > 0 {
		e, c.free = c.free[n-1], c.free[:n-1]
	}
	c.mu.Unlock()
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false), zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return dst, err
		}
	}
	out := e.EncodeAll(src, dst[:0])
	c.mu.Lock()
	c.free = append(c.free, e)
	c.mu.Unlock()
	return out, nil
}

// Decode appends the decompressed form of src to dst[:0].
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return dst, err
		}
		c.dec = d
	}
	return c.dec.DecodeAll(src, dst[:0])
}
