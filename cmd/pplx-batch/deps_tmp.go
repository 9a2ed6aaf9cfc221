package main

// Temporary: keeps the chosen dependencies in go.mod while the packages that
// use them are being written. Remove once every import below is used.
import (
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/rs/zerolog"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/time/rate"
)
