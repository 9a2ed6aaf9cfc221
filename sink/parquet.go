package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/encoding"
)

// DefaultRowGroupRows is the number of rows per Parquet row group when
// [ParquetOptions] leaves RowGroupRows zero.
const DefaultRowGroupRows = 10_000

// maxInputColumns is the most keys of Row.Input that become columns of the
// input group; further keys go to input_extra.
const maxInputColumns = 1_000

// ParquetOptions configures a [Parquet] writer. The zero value means the
// defaults.
type ParquetOptions struct {
	// RowGroupRows is the number of rows per row group (default
	// DefaultRowGroupRows when zero; negative is an error). A row group is
	// buffered in memory until it is complete, so it bounds the memory of
	// the writer.
	RowGroupRows int
	// Compression is the codec of all columns: "zstd" (the default when
	// empty), "snappy" or "none".
	Compression string
	// Data, when not nil, is the layout of the rows' structured answers
	// (Row.Data): the file gets a data column after model. Without it the
	// file has no data column.
	Data *DataSchema
}

// Parquet writes [Row] values to a Parquet file, streaming: rows are
// buffered and written out as a row group every RowGroupRows rows, so memory
// does not grow with the number of rows. Close writes the footer; a file
// without it is unreadable, so unlike [JSONL] a Parquet file cannot be
// flushed part way.
//
// Columns, in this order (the names are part of the tool's contract):
//
//	id, status, error, request_id, content   required UTF8 strings
//	row, http_status, attempts, latency_ms   required INT64 (no logical type)
//	input        required group of optional UTF8 columns, one per key of the
//	             first row's Input, in input order (see below)
//	input_extra  optional UTF8: the keys not in the schema, as a JSON object
//	results      optional LIST of struct{title, url, snippet, date,
//	             last_updated: required UTF8}
//	citations    optional LIST of required UTF8
//	search_results optional LIST of struct{id: required INT64; title, url,
//	             date, snippet: required UTF8}
//	usage        optional struct{prompt_tokens, completion_tokens,
//	             total_tokens: required INT64; cost_usd: optional DOUBLE}
//	model        required UTF8
//	data         optional struct built from the job's JSON Schema, only
//	             when ParquetOptions.Data is set (see [DataSchema])
//
// (the exact order is id, row, status, error, input, input_extra,
// http_status, attempts, latency_ms, request_id, results, content,
// citations, search_results, usage, model, data). Lists use the standard three-level
// LIST layout with the names list and element. A nil slice is written as a
// null list, an empty slice as an empty list; a nil Usage or CostUSD as
// null.
//
// The schema is fixed by the first row whose Input has a key: input gets
// one column per key of that row, in order (a key that repeats counts
// once). Rows written before it, whose inputs are empty, are held back
// (at most RowGroupRows of them); if no row has a key by the time those
// fill a row group or the writer is closed, the file has no input column.
// A value is written as is when it is a JSON string, as its JSON text when
// it is a number, boolean, array or object, and as null when it is null or
// the key is missing. Keys that are not in the schema go, with their JSON
// values, into input_extra as one JSON object in input order (null when a
// row has none). When a key repeats within one row, its last value counts.
// Keys are column names as they are, whatever characters they contain.
//
// The data column holds Row.Data, decoded and fitted to the layout: null
// when a row has no data (nil or JSON null) or data that is not a JSON
// object; a value that does not fit its column (see [DataSchema]) is null,
// or, where the column is not nullable, makes its nearest nullable
// ancestor null. Data that is not valid JSON is an [ErrInvalidRow].
//
// Pages are version 1 and strings PLAIN-encoded, which every Parquet reader
// understands. Invalid UTF-8 in strings is replaced by U+FFFD.
//
// The zero value is not usable; create a Parquet with [CreateParquet] or
// [NewParquet]. A Parquet is not safe for concurrent use.
type Parquet struct {
	name  string      // for messages
	file  *atomicFile // nil when writing to an io.Writer
	out   io.Writer
	rows  int // rows per row group
	keys  int // most input columns (maxInputColumns; less in tests)
	codec compress.Codec
	data  *DataSchema // nil: no data column

	w       *parquet.Writer // nil until the schema is fixed
	lay     *layout
	pending []Row // rows held back until the schema is fixed
	inGroup int   // rows in the current row group

	// Scratch space reused by every Write.
	members []member
	slots   []slot
	extras  []member
	extraIx map[string]int
	buf     []byte
	enc     rowEncoder
	batch   [1]parquet.Row

	err   error // sticky
	state state
	cerr  error // result of Close
}

// CreateParquet creates a Parquet writer for the file name, written
// atomically (see the package documentation). The error names the file.
func CreateParquet(name string, opt ParquetOptions) (*Parquet, error) {
	if name == Stdout {
		return nil, fmt.Errorf("sink: %s: parquet cannot be written to standard output", name)
	}
	p, err := newParquet(name, opt)
	if err != nil {
		return nil, err
	}
	f, err := createAtomic(name)
	if err != nil {
		return nil, err
	}
	p.file, p.out = f, f.f
	return p, nil
}

// NewParquet returns a Parquet writer that writes to w. Close writes the
// footer but does not close w; Abort only stops the writer.
func NewParquet(w io.Writer, opt ParquetOptions) (*Parquet, error) {
	p, err := newParquet("parquet", opt)
	if err != nil {
		return nil, err
	}
	p.out = w
	return p, nil
}

func newParquet(name string, opt ParquetOptions) (*Parquet, error) {
	p := &Parquet{name: name, rows: opt.RowGroupRows, keys: maxInputColumns, data: opt.Data}
	switch {
	case p.rows == 0:
		p.rows = DefaultRowGroupRows
	case p.rows < 0:
		return nil, fmt.Errorf("sink: %s: row group rows %d: want a positive number", name, opt.RowGroupRows)
	}
	switch strings.ToLower(opt.Compression) {
	case "", "zstd":
		p.codec = &zstdCodec{}
	case "snappy":
		p.codec = &snappy.Codec{}
	case "none", "uncompressed":
		p.codec = &uncompressed.Codec{}
	default:
		return nil, fmt.Errorf("sink: %s: unknown compression %q (want zstd, snappy or none)", name, opt.Compression)
	}
	return p, nil
}

// Write appends r. A row whose Input is neither a JSON object nor null is
// not written, and the error wraps [ErrInvalidRow]; other errors are
// sticky. Write does not retain r.
func (p *Parquet) Write(r Row) error {
	if err := p.usable(); err != nil {
		return err
	}
	members, err := parseInput(r.Input, p.members[:0])
	p.members = members[:0]
	if err != nil {
		return fmt.Errorf("%w: %s: row %d: %w", ErrInvalidRow, p.name, r.Row, err)
	}
	if p.data != nil && !dataValid(r.Data) {
		return fmt.Errorf("%w: %s: row %d: data is not valid JSON", ErrInvalidRow, p.name, r.Row)
	}
	if p.lay == nil {
		if len(members) == 0 {
			p.pending = append(p.pending, cloneRow(r))
			if len(p.pending) < p.rows {
				return nil
			}
		}
		if err := p.start(members); err != nil {
			return err
		}
		if len(members) == 0 {
			return nil // r was the last pending row
		}
	}
	return p.writeRow(&r, members)
}

// usable returns the error that forbids using p: the sticky error, or
// ErrClosed.
func (p *Parquet) usable() error {
	if p.state != open {
		return fmt.Errorf("%w: %s", ErrClosed, p.name)
	}
	return p.err
}

// start fixes the schema from the input members of the first row that has
// any, creates the parquet writer and writes the pending rows.
func (p *Parquet) start(members []member) error {
	var keys []string
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if len(keys) == p.keys {
			break
		}
		if k := string(m.key); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	p.lay = newLayout(keys, p.data)
	err := p.guard("create", func() error {
		cfg, err := parquet.NewWriterConfig(
			p.lay.schema,
			parquet.Compression(p.codec),
			parquet.DataPageVersion(1),
			parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.Plain),
		)
		if err != nil {
			return err
		}
		p.w = parquet.NewWriter(p.out, cfg)
		return nil
	})
	if err != nil {
		p.err = err
		return err
	}
	p.slots = make([]slot, len(keys))
	pending := p.pending
	p.pending = nil
	for i := range pending {
		if err := p.writeRow(&pending[i], nil); err != nil {
			return err
		}
	}
	return nil
}

// guard runs f, turning a panic of the parquet library into an error that
// names the file. Errors are wrapped with op and the file name.
func (p *Parquet) guard(op string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sink: %s %s: parquet: %v", op, p.name, v)
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("sink: %s %s: %w", op, p.name, err)
	}
	return nil
}

// writeRow encodes r, whose input members have been parsed, and writes it,
// flushing a row group when it is complete. Its errors are sticky.
func (p *Parquet) writeRow(r *Row, members []member) error {
	err := p.guard("write", func() error {
		p.batch[0] = p.encode(r, members)
		_, err := p.w.WriteRows(p.batch[:])
		if err != nil {
			return err
		}
		if p.inGroup++; p.inGroup >= p.rows {
			p.inGroup = 0
			return p.w.Flush()
		}
		return nil
	})
	if err != nil {
		p.err = err
	}
	return err
}

// Close writes the rows not yet written and the footer and, for a file
// created by [CreateParquet], syncs it and renames it into place. If that
// fails, or if an earlier write failed, Close removes the temporary file (a
// previous file of the same name stays) and returns the error. Close on a
// closed Parquet returns the result of the first Close; after Abort it
// returns [ErrClosed].
func (p *Parquet) Close() error {
	switch p.state {
	case closed:
		return p.cerr
	case aborted:
		return fmt.Errorf("%w: %s", ErrClosed, p.name)
	}
	p.state = closed
	err := p.err
	if err == nil && p.lay == nil {
		err = p.start(nil)
	}
	if err == nil {
		err = p.guard("finish", p.w.Close)
	}
	if p.file == nil {
		p.cerr = err
		return err
	}
	if err != nil {
		p.file.abort()
		p.cerr = err
		return err
	}
	p.cerr = p.file.commit()
	return p.cerr
}

// Abort discards the output: for a file created by [CreateParquet] it
// removes the temporary file, so the final name keeps its previous state.
// Abort after Close or Abort does nothing and returns nil, so it can be
// deferred.
func (p *Parquet) Abort() error {
	if p.state != open {
		return nil
	}
	p.state = aborted
	p.pending = nil
	if p.file == nil {
		return nil
	}
	return p.file.abort()
}

// cloneRow returns a copy of r that shares no memory with it.
func cloneRow(r Row) Row {
	r.Input = bytes.Clone(r.Input)
	r.Data = bytes.Clone(r.Data)
	r.Results = slices.Clone(r.Results)
	r.Citations = slices.Clone(r.Citations)
	r.SearchResults = slices.Clone(r.SearchResults)
	if r.Usage != nil {
		u := *r.Usage
		if u.CostUSD != nil {
			c := *u.CostUSD
			u.CostUSD = &c
		}
		r.Usage = &u
	}
	return r
}

// layout is the schema of a file.
type layout struct {
	schema   *parquet.Schema
	keys     []string       // columns of the input group, in order
	keyIndex map[string]int // position in keys
}

func newLayout(keys []string, data *DataSchema) *layout {
	l := &layout{keys: keys, keyIndex: make(map[string]int, len(keys))}
	for i, k := range keys {
		l.keyIndex[k] = i
	}
	str := parquet.String
	i64 := func() parquet.Node { return parquet.Leaf(parquet.Int64Type) }
	optStr := func() parquet.Node { return parquet.Optional(parquet.String()) }

	fields := []parquet.Field{
		field("id", str()),
		field("row", i64()),
		field("status", str()),
		field("error", str()),
	}
	if len(keys) > 0 {
		input := make([]parquet.Field, len(keys))
		for i, k := range keys {
			input[i] = field(k, optStr())
		}
		fields = append(fields, field("input", group(input...)))
	}
	fields = append(fields,
		field("input_extra", optStr()),
		field("http_status", i64()),
		field("attempts", i64()),
		field("latency_ms", i64()),
		field("request_id", str()),
		field("results", parquet.Optional(parquet.List(group(
			field("title", str()),
			field("url", str()),
			field("snippet", str()),
			field("date", str()),
			field("last_updated", str()),
		)))),
		field("content", str()),
		field("citations", parquet.Optional(parquet.List(str()))),
		field("search_results", parquet.Optional(parquet.List(group(
			field("id", i64()),
			field("title", str()),
			field("url", str()),
			field("date", str()),
			field("snippet", str()),
		)))),
		field("usage", parquet.Optional(group(
			field("prompt_tokens", i64()),
			field("completion_tokens", i64()),
			field("total_tokens", i64()),
			field("cost_usd", parquet.Optional(parquet.Leaf(parquet.DoubleType))),
		))),
		field("model", str()),
	)
	if data != nil {
		fields = append(fields, field("data", data.parquetNode()))
	}
	l.schema = parquet.NewSchema("pplx_batch", group(fields...))
	return l
}

// encode returns the values of r in column order (see newLayout). The
// values point into r, p's scratch space and members until the next call.
func (p *Parquet) encode(r *Row, members []member) parquet.Row {
	e := &p.enc
	e.reset()
	e.str(r.ID)
	e.int(r.Row)
	e.str(r.Status)
	e.str(r.Error)
	p.encodeInput(members)
	e.int(int64(r.HTTPStatus))
	e.int(int64(r.Attempts))
	e.int(r.LatencyMS)
	e.str(r.RequestID)

	rs := r.Results
	e.structList(len(rs), rs == nil, func(i int) string { return rs[i].Title })
	e.structList(len(rs), rs == nil, func(i int) string { return rs[i].URL })
	e.structList(len(rs), rs == nil, func(i int) string { return rs[i].Snippet })
	e.structList(len(rs), rs == nil, func(i int) string { return rs[i].Date })
	e.structList(len(rs), rs == nil, func(i int) string { return rs[i].LastUpdated })

	e.str(r.Content)
	cs := r.Citations
	e.structList(len(cs), cs == nil, func(i int) string { return cs[i] })

	ss := r.SearchResults
	e.intList(len(ss), ss == nil, func(i int) int64 { return ss[i].ID })
	e.structList(len(ss), ss == nil, func(i int) string { return ss[i].Title })
	e.structList(len(ss), ss == nil, func(i int) string { return ss[i].URL })
	e.structList(len(ss), ss == nil, func(i int) string { return ss[i].Date })
	e.structList(len(ss), ss == nil, func(i int) string { return ss[i].Snippet })

	if u := r.Usage; u == nil {
		for range 4 {
			e.null(0)
		}
	} else {
		e.intAt(u.PromptTokens, 1)
		e.intAt(u.CompletionTokens, 1)
		e.intAt(u.TotalTokens, 1)
		if u.CostUSD == nil {
			e.null(1)
		} else {
			e.add(parquet.DoubleValue(*u.CostUSD), 0, 2)
			e.col++
		}
	}
	e.str(r.Model)
	if p.data != nil {
		e.encodeData(p.data.paths, p.dataValue(r.Data))
	}
	return e.vals
}

// dataValue returns raw, checked by dataValid, as conform fits it to the
// layout: nil for no data.
func (p *Parquet) dataValue(raw json.RawMessage) any {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	v, _ := conform(p.data.root, raw) // the root is nullable
	return v
}

// slot is the value of one input column in the row being encoded.
type slot struct {
	val []byte
	ok  bool // false: null
}

// encodeInput writes the input columns and input_extra.
func (p *Parquet) encodeInput(members []member) {
	e := &p.enc
	clear(p.slots)
	p.extras = p.extras[:0]
	clear(p.extraIx)
	for _, m := range members {
		if i, ok := p.lay.keyIndex[string(m.key)]; ok {
			v, ok := inputValue(m.value)
			p.slots[i] = slot{val: v, ok: ok}
			continue
		}
		p.addExtra(m)
	}
	for _, s := range p.slots {
		if s.ok {
			e.add(parquet.ByteArrayValue(s.val), 0, 1)
			e.col++
		} else {
			e.null(0)
		}
	}
	if len(p.extras) == 0 {
		e.null(0)
		return
	}
	b := append(p.buf[:0], '{')
	for i, m := range p.extras {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.rawKey...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	b = append(b, '}')
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	p.buf = b
	e.add(parquet.ByteArrayValue(b), 0, 1)
	e.col++
}

// addExtra adds m to the keys of input_extra; a key that repeats keeps its
// first place and takes the last value.
func (p *Parquet) addExtra(m member) {
	const linear = 16
	if len(p.extras) < linear {
		for i := range p.extras {
			if bytes.Equal(p.extras[i].key, m.key) {
				p.extras[i].value = m.value
				return
			}
		}
		p.extras = append(p.extras, m)
		return
	}
	if p.extraIx == nil {
		p.extraIx = make(map[string]int)
	}
	if len(p.extraIx) == 0 {
		for i, x := range p.extras {
			p.extraIx[string(x.key)] = i
		}
	}
	if i, ok := p.extraIx[string(m.key)]; ok {
		p.extras[i].value = m.value
		return
	}
	p.extraIx[string(m.key)] = len(p.extras)
	p.extras = append(p.extras, m)
}

// inputValue converts a raw JSON value of the input to the text of its
// column; ok is false for null.
func inputValue(raw []byte) (b []byte, ok bool) {
	switch {
	case string(raw) == "null":
		return nil, false
	case raw[0] == '"':
		return unquote(raw), true
	case utf8.Valid(raw):
		return raw, true
	default:
		return bytes.ToValidUTF8(raw, []byte("\uFFFD")), true
	}
}

// rowEncoder builds the parquet.Row of one Row, column by column: every
// method but add writes the values of one whole leaf column and moves to
// the next.
type rowEncoder struct {
	vals parquet.Row
	col  int
}

func (e *rowEncoder) reset() {
	e.vals = e.vals[:0]
	e.col = 0
}

func (e *rowEncoder) add(v parquet.Value, rep, def int) {
	e.vals = append(e.vals, v.Level(rep, def, e.col))
}

// str writes a required top-level string column.
func (e *rowEncoder) str(s string) {
	e.add(strValue(s), 0, 0)
	e.col++
}

// int writes a required top-level INT64 column.
func (e *rowEncoder) int(v int64) { e.intAt(v, 0) }

// intAt writes a required INT64 column at definition level def.
func (e *rowEncoder) intAt(v int64, def int) {
	e.add(parquet.Int64Value(v), 0, def)
	e.col++
}

// null writes a null at definition level def.
func (e *rowEncoder) null(def int) {
	e.add(parquet.Value{}, 0, def)
	e.col++
}

// structList writes one string leaf of an optional list of n elements
// (isNil: a null list); see list.
func (e *rowEncoder) structList(n int, isNil bool, at func(i int) string) {
	e.list(n, isNil, func(i int) parquet.Value { return strValue(at(i)) })
}

// intList is structList for an INT64 leaf.
func (e *rowEncoder) intList(n int, isNil bool, at func(i int) int64) {
	e.list(n, isNil, func(i int) parquet.Value { return parquet.Int64Value(at(i)) })
}

// list writes one leaf of an optional list of n elements (isNil: a null
// list): at definition level 0 for a null list, 1 for an empty one, and 2
// for each element, the first at repetition level 0 and the others at 1.
func (e *rowEncoder) list(n int, isNil bool, at func(i int) parquet.Value) {
	switch {
	case isNil:
		e.add(parquet.Value{}, 0, 0)
	case n == 0:
		e.add(parquet.Value{}, 0, 1)
	default:
		for i := range n {
			e.add(at(i), min(i, 1), 2)
		}
	}
	e.col++
}

// strValue returns a BYTE_ARRAY value that points to the bytes of s,
// replacing invalid UTF-8. The parquet writer copies the bytes before
// WriteRows returns and never modifies them.
func strValue(s string) parquet.Value {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// groupNode is a required parquet group whose fields keep the order they
// were given in (parquet.Group sorts them by name).
type groupNode struct {
	fields []parquet.Field
}

func group(fields ...parquet.Field) *groupNode { return &groupNode{fields: fields} }

func (g *groupNode) ID() int { return 0 }
func (g *groupNode) String() string {
	var b strings.Builder
	parquet.PrintSchema(&b, "", g)
	return b.String()
}
func (g *groupNode) Type() parquet.Type          { return parquet.Group(nil).Type() }
func (g *groupNode) Optional() bool              { return false }
func (g *groupNode) Repeated() bool              { return false }
func (g *groupNode) Required() bool              { return true }
func (g *groupNode) Leaf() bool                  { return false }
func (g *groupNode) Fields() []parquet.Field     { return g.fields }
func (g *groupNode) Encoding() encoding.Encoding { return nil }
func (g *groupNode) Compression() compress.Codec { return nil }
func (g *groupNode) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }

// fieldNode names a node in its parent group.
type fieldNode struct {
	parquet.Node
	name string
}

func field(name string, n parquet.Node) parquet.Field { return &fieldNode{Node: n, name: name} }

func (f *fieldNode) Name() string { return f.name }

// Value returns the field of a map[string]any; this package builds
// parquet rows itself and does not use it.
func (f *fieldNode) Value(base reflect.Value) reflect.Value {
	for base.Kind() == reflect.Interface || base.Kind() == reflect.Pointer {
		if base.IsNil() {
			return reflect.Value{}
		}
		base = base.Elem()
	}
	if base.Kind() != reflect.Map || base.Type().Key().Kind() != reflect.String {
		return reflect.Value{}
	}
	return base.MapIndex(reflect.ValueOf(f.name).Convert(base.Type().Key()))
}
