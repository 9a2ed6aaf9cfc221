package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// parquetFile is a Parquet file read back.
type parquetFile struct {
	file   *parquet.File
	schema string           // as printed by parquet-go
	rows   []map[string]any // reconstructed by parquet-go from the file's schema
}

func readParquet(t *testing.T, data []byte) parquetFile {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	pf := parquetFile{file: f, schema: f.Schema().String()}
	rd := parquet.NewReader(f)
	defer rd.Close()
	for {
		m := map[string]any{}
		err := rd.Read(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read parquet row %d: %v", len(pf.rows)+1, err)
		}
		pf.rows = append(pf.rows, m)
	}
	return pf
}

func writeParquet(t *testing.T, opt ParquetOptions, rows []Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewParquet(&buf, opt)
	if err != nil {
		t.Fatalf("NewParquet: %v", err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write row %d: %v", r.Row, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// wantParquet is how r reads back, apart from input and input_extra: the
// mapping of the Row fields to Parquet values, written out independently
// of the writer.
func wantParquet(r Row) map[string]any {
	m := map[string]any{
		"id": r.ID, "row": r.Row, "status": r.Status, "error": r.Error,
		"http_status": int64(r.HTTPStatus), "attempts": int64(r.Attempts),
		"latency_ms": r.LatencyMS, "request_id": r.RequestID, "content": r.Content, "model": r.Model,
		"results": nil, "citations": nil, "search_results": nil, "usage": nil,
	}
	if r.Results != nil {
		l := []any{}
		for _, s := range r.Results {
			l = append(l, map[string]any{"title": s.Title, "url": s.URL, "snippet": s.Snippet, "date": s.Date, "last_updated": s.LastUpdated})
		}
		m["results"] = l
	}
	if r.Citations != nil {
		l := []any{}
		for _, c := range r.Citations {
			l = append(l, c)
		}
		m["citations"] = l
	}
	if r.SearchResults != nil {
		l := []any{}
		for _, s := range r.SearchResults {
			l = append(l, map[string]any{"id": s.ID, "title": s.Title, "url": s.URL, "date": s.Date, "snippet": s.Snippet})
		}
		m["search_results"] = l
	}
	if u := r.Usage; u != nil {
		um := map[string]any{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens, "total_tokens": u.TotalTokens, "cost_usd": nil}
		if u.CostUSD != nil {
			um["cost_usd"] = *u.CostUSD
		}
		m["usage"] = um
	}
	return m
}

// splitInput removes input and input_extra from a row read back.
func splitInput(m map[string]any) (input map[string]any, extra any) {
	input, _ = m["input"].(map[string]any)
	extra = m["input_extra"]
	delete(m, "input")
	delete(m, "input_extra")
	return input, extra
}

func TestParquetRoundTripFields(t *testing.T) {
	tests := []struct {
		name string
		rows []Row
	}{
		{"sample rows", sampleRows()},
		{"sample rows, one row per group", sampleRows()},
		{"zero values", []Row{{Input: json.RawMessage(`{"a":"b"}`)}, {}}},
		{"negative and large numbers", []Row{{
			Row: 1<<62 + 5, HTTPStatus: -1, Attempts: 1 << 40, LatencyMS: -7,
			Input: json.RawMessage(`{"a":"b"}`),
			Usage: &Usage{PromptTokens: -1, CompletionTokens: 1 << 50, CostUSD: ptr(math.Copysign(0, -1))},
		}}},
		{"many list items", []Row{{
			Input:     json.RawMessage(`{"a":"b"}`),
			Results:   make([]SearchResult, 300),
			Citations: strings.Split(strings.Repeat("c,", 99)+"c", ","),
		}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := ParquetOptions{}
			if i == 1 {
				opt.RowGroupRows = 1
			}
			got := readParquet(t, writeParquet(t, opt, tt.rows)).rows
			if len(got) != len(tt.rows) {
				t.Fatalf("got %d rows, want %d", len(got), len(tt.rows))
			}
			for i, g := range got {
				splitInput(g)
				if want := wantParquet(tt.rows[i]); !reflect.DeepEqual(g, want) {
					t.Errorf("row %d:\n got %#v\nwant %#v", i, g, want)
				}
			}
		})
	}
}

func TestParquetInput(t *testing.T) {
	type want struct {
		input map[string]any // nil: no input column
		extra any            // nil or string
	}
	tests := []struct {
		name   string
		inputs []string
		want   []want
		groups []int // RowGroupRows values to try; default 0, 1, 2
	}{
		{
			name:   "strings, numbers, null, nested",
			inputs: []string{`{"s":"x","n":12.50,"b":false,"z":null,"a":[1, "two"],"o":{"k":{"l":[]}},"e":""}`},
			want: []want{{input: map[string]any{
				"s": "x", "n": "12.50", "b": "false", "z": nil, "a": `[1, "two"]`, "o": `{"k":{"l":[]}}`, "e": "",
			}}},
		},
		{
			name: "missing keys are null, extra keys go to input_extra",
			inputs: []string{
				`{"a":"1","b":"2"}`,
				`{"b":"3"}`,
				`{"c":"x","a":"4","d":{"e":[1,2]},"f":null}`,
				`{}`,
				`null`,
				``,
			},
			want: []want{
				{input: map[string]any{"a": "1", "b": "2"}},
				{input: map[string]any{"a": nil, "b": "3"}},
				{input: map[string]any{"a": "4", "b": nil}, extra: `{"c":"x","d":{"e":[1,2]},"f":null}`},
				{input: map[string]any{"a": nil, "b": nil}},
				{input: map[string]any{"a": nil, "b": nil}},
				{input: map[string]any{"a": nil, "b": nil}},
			},
		},
		{
			name:   "awkward key names are column names as they are",
			inputs: []string{`{"":"empty","a,b":"comma","a.b":"dot","x y":"space","\"q\"":"quote","ключ":"cyrillic","🚀":"emoji","a\nb":"newline","tab\t":"tab"}`},
			want: []want{{input: map[string]any{
				"": "empty", "a,b": "comma", "a.b": "dot", "x y": "space", `"q"`: "quote", "ключ": "cyrillic", "🚀": "emoji", "a\nb": "newline", "tab\t": "tab",
			}}},
		},
		{
			name:   "escapes and unicode values",
			inputs: []string{`{"u":"\u00e9\u65e5 \ud83d\ude80","esc":"a\"b\\c\/d\n","raw":"日本語"}`},
			want:   []want{{input: map[string]any{"u": "é日 🚀", "esc": "a\"b\\c/d\n", "raw": "日本語"}}},
		},
		{
			name:   "repeated keys: first place, last value",
			inputs: []string{`{"a":"1","b":"2","a":"3"}`, `{"b":"4","x":"5","x":"6","b":"7"}`},
			want: []want{
				{input: map[string]any{"a": "3", "b": "2"}},
				{input: map[string]any{"a": nil, "b": "7"}, extra: `{"x":"6"}`},
			},
		},
		{
			name:   "extra keys keep their escapes and order",
			inputs: []string{`{"a":1}`, `{"z\u00e9":"\"v\"","b":true,"a":2}`},
			want: []want{
				{input: map[string]any{"a": "1"}},
				{input: map[string]any{"a": "2"}, extra: `{"z\u00e9":"\"v\"","b":true}`},
			},
		},
		{
			name:   "first rows without keys are held back",
			inputs: []string{`{}`, `null`, `{"k":"v"}`, `{"k":"w","j":1}`},
			want: []want{
				{input: map[string]any{"k": nil}},
				{input: map[string]any{"k": nil}},
				{input: map[string]any{"k": "v"}},
				{input: map[string]any{"k": "w"}, extra: `{"j":1}`},
			},
			groups: []int{0, 3},
		},
		{
			name:   "no row has a key",
			inputs: []string{`{}`, `null`},
			want:   []want{{}, {}},
		},
		{
			name:   "invalid UTF-8 is replaced",
			inputs: []string{"{\"a\":\"x\xffy\",\"b\":[\"\xfe\"]}", "{\"c\":\"\xff\"}"},
			want: []want{
				{input: map[string]any{"a": "x\uFFFDy", "b": "[\"\uFFFD\"]"}},
				{input: map[string]any{"a": nil, "b": nil}, extra: "{\"c\":\"\uFFFD\"}"},
			},
		},
	}
	for _, tt := range tests {
		groups := tt.groups
		if groups == nil {
			groups = []int{0, 1, 2}
		}
		for _, groupRows := range groups {
			t.Run(fmt.Sprintf("%s/group %d", tt.name, groupRows), func(t *testing.T) {
				rows := make([]Row, len(tt.inputs))
				for i, in := range tt.inputs {
					rows[i] = Row{ID: fmt.Sprint(i), Row: int64(i + 1), Input: json.RawMessage(in)}
				}
				pf := readParquet(t, writeParquet(t, ParquetOptions{RowGroupRows: groupRows}, rows))
				if len(pf.rows) != len(tt.want) {
					t.Fatalf("got %d rows, want %d", len(pf.rows), len(tt.want))
				}
				for i, g := range pf.rows {
					if g["id"] != fmt.Sprint(i) {
						t.Errorf("row %d: got id %v, want %d (order)", i, g["id"], i)
					}
					input, extra := splitInput(g)
					if _, ok := pf.file.Schema().Lookup("input_extra"); !ok {
						t.Fatalf("no input_extra column")
					}
					w := tt.want[i]
					if !reflect.DeepEqual(input, w.input) {
						t.Errorf("row %d: input: got %#v, want %#v", i, input, w.input)
					}
					if !reflect.DeepEqual(extra, w.extra) {
						t.Errorf("row %d: input_extra: got %#v, want %#v", i, extra, w.extra)
					}
				}
			})
		}
	}
}

func TestParquetInputColumnOrder(t *testing.T) {
	data := writeParquet(t, ParquetOptions{}, []Row{{Input: json.RawMessage(`{"zeta":"1","alpha":"2","a,b":"3","mid":"4","alpha":"5"}`)}})
	f := readParquet(t, data).file
	input := f.Root().Column("input")
	if input == nil {
		t.Fatalf("no input column")
	}
	var got []string
	for _, c := range input.Columns() {
		got = append(got, c.Name())
	}
	want := []string{"zeta", "alpha", "a,b", "mid"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("input columns: got %q, want %q", got, want)
	}
}

func TestParquetSchemaGolden(t *testing.T) {
	data := writeParquet(t, ParquetOptions{}, sampleRows())
	checkGolden(t, "schema.golden", readParquet(t, data).schema+"\n")
}

// checkGolden compares got with the golden file testdata/name, which
// -update rewrites.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update ./sink/ to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
}

func TestParquetLogicalTypes(t *testing.T) {
	data := writeParquet(t, ParquetOptions{}, sampleRows())
	md := readParquet(t, data).file.Metadata()
	byName := map[string]format.SchemaElement{}
	for _, e := range md.Schema {
		if _, dup := byName[e.Name]; !dup {
			byName[e.Name] = e
		}
	}
	get := func(n interface{ Get() (format.Type, bool) }) format.Type { v, _ := n.Get(); return v }
	rep := func(e format.SchemaElement) format.FieldRepetitionType { v, _ := e.RepetitionType.Get(); return v }
	for _, name := range []string{"id", "status", "error", "request_id", "content", "input_extra", "company"} {
		e := byName[name]
		if _, ok := e.LogicalType.Value.(*format.StringType); !ok || get(e.Type) != format.ByteArray {
			t.Errorf("%s: got type %v logical %v, want BYTE_ARRAY STRING", name, get(e.Type), e.LogicalType.String())
		}
	}
	for _, name := range []string{"row", "http_status", "attempts", "latency_ms", "prompt_tokens"} {
		if e := byName[name]; get(e.Type) != format.Int64 {
			t.Errorf("%s: got type %v, want INT64", name, get(e.Type))
		}
	}
	for _, name := range []string{"results", "citations", "search_results"} {
		e := byName[name]
		if _, ok := e.LogicalType.Value.(*format.ListType); !ok || rep(e) != format.Optional {
			t.Errorf("%s: got logical %v repetition %v, want optional LIST", name, e.LogicalType.String(), rep(e))
		}
	}
	if e := byName["cost_usd"]; get(e.Type) != format.Double || rep(e) != format.Optional {
		t.Errorf("cost_usd: got %v %v, want optional DOUBLE", rep(e), get(e.Type))
	}
}

func TestParquetRowGroups(t *testing.T) {
	tests := []struct {
		rows, groupRows, wantGroups int
	}{
		{0, 0, 0},
		{1, 0, 1},
		{10, 3, 4},
		{9, 3, 3},
		{25, 0, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d rows by %d", tt.rows, tt.groupRows), func(t *testing.T) {
			rows := make([]Row, tt.rows)
			for i := range rows {
				rows[i] = Row{Row: int64(i + 1), Input: json.RawMessage(`{"a":"b"}`)}
			}
			pf := readParquet(t, writeParquet(t, ParquetOptions{RowGroupRows: tt.groupRows}, rows))
			if got := len(pf.file.RowGroups()); got != tt.wantGroups {
				t.Errorf("got %d row groups, want %d", got, tt.wantGroups)
			}
			if got := len(pf.rows); got != tt.rows {
				t.Errorf("got %d rows, want %d", got, tt.rows)
			}
			for i, r := range pf.rows {
				if r["row"] != int64(i+1) {
					t.Errorf("row %d: got row %v, want %d", i, r["row"], i+1)
				}
			}
		})
	}
}

func TestParquetHeldBackRowsFillAGroup(t *testing.T) {
	// Rows without input keys are held back only until they fill a row
	// group; then the schema is fixed without an input column and later
	// keys go to input_extra.
	rows := []Row{{Row: 1}, {Row: 2, Input: json.RawMessage(`{}`)}, {Row: 3, Input: json.RawMessage(`{"k":"v"}`)}}
	var buf bytes.Buffer
	w, err := NewParquet(&buf, ParquetOptions{RowGroupRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if r.Row == 2 && len(w.pending) != 0 {
			t.Errorf("after a full group: %d rows held back, want 0", len(w.pending))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf := readParquet(t, buf.Bytes())
	if _, ok := pf.file.Schema().Lookup("input", "k"); ok {
		t.Errorf("schema has input.k, want no input column")
	}
	if got := pf.rows[2]["input_extra"]; got != `{"k":"v"}` {
		t.Errorf("row 3 input_extra: got %#v, want {\"k\":\"v\"}", got)
	}
}

func TestParquetHeldBackRowsAreCopied(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewParquet(&buf, ParquetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := Row{ID: "1", Results: []SearchResult{{Title: "before"}}, Citations: []string{"before"}, Usage: &Usage{TotalTokens: 1, CostUSD: ptr(1.0)}}
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	r.Results[0].Title, r.Citations[0], r.Usage.TotalTokens, *r.Usage.CostUSD = "after", "after", 2, 2
	if err := w.Write(Row{ID: "2", Input: json.RawMessage(`{"a":"b"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readParquet(t, buf.Bytes()).rows[0]
	splitInput(got)
	want := wantParquet(Row{ID: "1", Results: []SearchResult{{Title: "before"}}, Citations: []string{"before"}, Usage: &Usage{TotalTokens: 1, CostUSD: ptr(1.0)}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestParquetManyInputKeys(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		keys  int
	}{
		{"the real limit", maxInputColumns, maxInputColumns + 2},
		{"a small limit", 3, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("{")
			for i := range tt.keys {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `"k%d":"%d"`, i, i)
			}
			b.WriteString("}")
			var buf bytes.Buffer
			w, err := NewParquet(&buf, ParquetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.keys = tt.limit
			if err := w.Write(Row{Input: json.RawMessage(b.String())}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			input, extra := splitInput(readParquet(t, buf.Bytes()).rows[0])
			if len(input) != tt.limit {
				t.Errorf("got %d input columns, want %d", len(input), tt.limit)
			}
			var want strings.Builder
			want.WriteString("{")
			for i := tt.limit; i < tt.keys; i++ {
				if i > tt.limit {
					want.WriteString(",")
				}
				fmt.Fprintf(&want, `"k%d":"%d"`, i, i)
			}
			want.WriteString("}")
			if extra != want.String() {
				t.Errorf("input_extra: got %#v, want %s", extra, want.String())
			}
		})
	}
}

func TestParquetInvalidInput(t *testing.T) {
	tests := []struct {
		name  string
		input string
		msg   string
	}{
		{"array", `[1,2]`, "not a JSON object"},
		{"string", `"x"`, "not a JSON object"},
		{"number", `12`, "not a JSON object"},
		{"truncated", `{"a":`, "not valid JSON"},
		{"trailing", `{"a":1} x`, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewParquet(&buf, ParquetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Write(Row{Row: 4, Input: json.RawMessage(tt.input)})
			if !errors.Is(err, ErrInvalidRow) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "row 4") {
				t.Fatalf("got %v, want ErrInvalidRow naming row 4 and %q", err, tt.msg)
			}
			if err := w.Write(Row{Row: 5, Input: json.RawMessage(`{"a":"b"}`)}); err != nil {
				t.Fatalf("Write after an invalid row: got %v, want nil", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if rows := readParquet(t, buf.Bytes()).rows; len(rows) != 1 || rows[0]["row"] != int64(5) {
				t.Errorf("got %v, want only row 5", rows)
			}
		})
	}
}

func TestParquetOptions(t *testing.T) {
	tests := []struct {
		opt       ParquetOptions
		wantCodec format.CompressionCodec
		wantErr   string
	}{
		{ParquetOptions{}, format.Zstd, ""},
		{ParquetOptions{Compression: "zstd"}, format.Zstd, ""},
		{ParquetOptions{Compression: "snappy"}, format.Snappy, ""},
		{ParquetOptions{Compression: "none"}, format.Uncompressed, ""},
		{ParquetOptions{Compression: "lz4"}, 0, `unknown compression "lz4"`},
		{ParquetOptions{RowGroupRows: -1}, 0, "row group rows -1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.opt), func(t *testing.T) {
			_, err := NewParquet(io.Discard, tt.opt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				name := filepath.Join(t.TempDir(), "x.parquet")
				if _, err := CreateParquet(name, tt.opt); err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("CreateParquet: got %v, want an error naming %s", err, name)
				}
				assertNoTempFiles(t, name)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			pf := readParquet(t, writeParquet(t, tt.opt, sampleRows()))
			for _, rg := range pf.file.Metadata().RowGroups {
				for _, c := range rg.Columns {
					if c.MetaData.Codec != tt.wantCodec {
						t.Fatalf("column %v: got codec %v, want %v", c.MetaData.PathInSchema, c.MetaData.Codec, tt.wantCodec)
					}
				}
			}
			if len(pf.rows) != len(sampleRows()) {
				t.Errorf("got %d rows, want %d", len(pf.rows), len(sampleRows()))
			}
		})
	}
}

func TestParquetStdoutIsAnError(t *testing.T) {
	if _, err := CreateParquet(Stdout, ParquetOptions{}); err == nil {
		t.Errorf("CreateParquet(-): got nil, want an error")
	}
}

func TestParquetGuardTurnsPanicsIntoErrors(t *testing.T) {
	p, err := NewParquet(io.Discard, ParquetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.guard("write", func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.HasPrefix(err.Error(), "sink: write parquet") {
		t.Errorf("got %v, want an error with the panic value", err)
	}
}

func TestParquetWriterErrorIsSticky(t *testing.T) {
	errDisk := errors.New("disk full")
	w, err := NewParquet(&failWriter{n: 100, err: errDisk}, ParquetOptions{RowGroupRows: 1, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	big := Row{Content: strings.Repeat("x", 1<<16), Input: json.RawMessage(`{"a":"b"}`)}
	var werr error
	for range 5 {
		if werr = w.Write(big); werr != nil {
			break
		}
	}
	if !errors.Is(werr, errDisk) {
		t.Fatalf("Write: got %v, want %v", werr, errDisk)
	}
	if err := w.Write(big); !errors.Is(err, errDisk) {
		t.Errorf("Write after the failure: got %v, want %v", err, errDisk)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: got %v, want %v", err, errDisk)
	}
}

// TestParquetMemoryBounded writes rows whose strings are all different and
// incompressible enough that a writer keeping its pages would show, and
// checks that the heap grows by less than a small fraction of the data:
// what is left is the footer metadata of the row groups, which Parquet
// keeps until Close by design.
func TestParquetMemoryBounded(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 40_000
	}
	const groupRows = 2_000 // n is a multiple: both heap readings follow a flush
	w, err := NewParquet(io.Discard, ParquetOptions{RowGroupRows: groupRows, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	row := Row{Status: StatusOK, Input: json.RawMessage(`{"q":"x"}`)}
	payload := make([]byte, 1000)
	heapAt := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var base uint64
	var written int64
	for i := range n {
		for j := range payload {
			payload[j] = 'a' + byte((i*7+j*13+i/26)%26)
		}
		row.ID = fmt.Sprint(i)
		row.Row = int64(i)
		row.Content = string(payload)
		written += int64(len(row.Content))
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
		if i == 2*groupRows-1 {
			base = heapAt()
			written = 0
		}
	}
	growth := int64(heapAt()) - int64(base)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows: heap grew by %d KiB while writing %d KiB of content", n, growth/1024, written/1024)
	if growth > written/10 {
		t.Errorf("heap grew by %d bytes for %d bytes of content written, want under a tenth", growth, written)
	}
}
