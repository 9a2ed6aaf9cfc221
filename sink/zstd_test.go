package sink

import (
	"bytes"
	"sync"
	"testing"

	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
)

func TestZstdCodecRoundTrip(t *testing.T) {
	var c zstdCodec
	var std pqzstd.Codec
	var wg sync.WaitGroup
	for g := range 4 { // concurrent pages, as parquet-go may compress them
		wg.Go(func() {
			for i := range 20 {
				src := bytes.Repeat([]byte{byte(g), byte(i), 'x', 'y'}, 1000*(i+1))
				enc, err := c.Encode(nil, src)
				if err != nil {
					t.Error(err)
					return
				}
				// Readers decode it with any zstd decoder.
				dec, err := std.Decode(nil, enc)
				if err != nil || !bytes.Equal(dec, src) {
					t.Errorf("page %d/%d: parquet-go's codec decoded %d bytes (err %v), want %d", g, i, len(dec), err, len(src))
				}
				if dec, err := c.Decode(nil, enc); err != nil || !bytes.Equal(dec, src) {
					t.Errorf("page %d/%d: Decode gave %d bytes (err %v), want %d", g, i, len(dec), err, len(src))
				}
			}
		})
	}
	wg.Wait()
}
