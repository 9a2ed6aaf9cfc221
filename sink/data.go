package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// DataSchema is the Parquet layout of a structured answer (the data
// field), built from the JSON Schema the answers are validated against.
// Use [NewDataSchema]; the zero value is not usable.
//
// The mapping is: string → STRING; integer → INT64; number → DOUBLE;
// boolean → BOOLEAN; a string with format date → DATE, with format
// date-time → TIMESTAMP (microseconds, adjusted to UTC: an instant, which
// DuckDB reads as TIMESTAMP WITH TIME ZONE); enum and const of strings →
// STRING; an array with items → LIST of the items; an object with
// properties → a struct of them, in the schema's order (members of an
// answer that are not among them have no column and are left out). A
// property that is not required, or whose type admits null, is nullable. Anything else
// (oneOf, anyOf, allOf, $ref, an object without properties or with free
// additionalProperties, an array without items, an enum of mixed types, a
// list of types) is kept as its JSON text in a STRING column; [DataSchema.Text]
// lists those columns.
type DataSchema struct {
	root  *dataNode
	text  []string     // paths of the columns kept as JSON text
	paths [][]dataStep // from the root to each leaf column, in column order
}

// dataKind is the kind of a node of a DataSchema.
type dataKind int

const (
	dataString dataKind = iota
	dataInt
	dataFloat
	dataBool
	dataDate
	dataTimestamp
	dataJSON // any value, as its JSON text
	dataList
	dataObject
)

// dataNode is one node of the layout.
type dataNode struct {
	kind     dataKind
	optional bool
	elem     *dataNode      // dataList
	fields   []dataField    // dataObject, in schema order
	index    map[string]int // dataObject: the position of each field
}

type dataField struct {
	name string
	node *dataNode
}

// maxDataDepth bounds the nesting that becomes columns; deeper values
// are kept as JSON text.
const maxDataDepth = 16

// NewDataSchema builds the layout of answers validated by the JSON Schema
// schema, whose root must be an object schema with properties.
func NewDataSchema(schema []byte) (*DataSchema, error) {
	root, err := decodeOrdered(schema)
	if err != nil {
		return nil, fmt.Errorf("sink: data schema: %w", err)
	}
	obj, ok := root.(orderedObject)
	if !ok {
		return nil, errors.New("sink: data schema: the root is not an object")
	}
	d := &DataSchema{}
	n := d.node(obj, "data", 0)
	if n.kind != dataObject {
		return nil, errors.New("sink: data schema: the root is not an object schema with properties")
	}
	n.optional = true // rows without an answer have none
	d.root = n
	d.paths = leafPaths(n)
	return d, nil
}

// Text returns the paths (such as "data.extra") of the columns that keep
// a value as its JSON text because its schema has no column type.
func (d *DataSchema) Text() []string { return append([]string(nil), d.text...) }

// Columns returns the paths and Parquet types of the layout's leaf
// columns, for people: "data.ceo STRING", "data.sources LIST<STRING>".
func (d *DataSchema) Columns() []string {
	var out []string
	var walk func(n *dataNode, path string)
	walk = func(n *dataNode, path string) {
		if n.kind == dataObject {
			for _, f := range n.fields {
				walk(f.node, path+"."+f.name)
			}
			return
		}
		out = append(out, path+" "+n.typeName())
	}
	walk(d.root, "data")
	return out
}

func (n *dataNode) typeName() string {
	var t string
	switch n.kind {
	case dataString:
		t = "STRING"
	case dataInt:
		t = "INT64"
	case dataFloat:
		t = "DOUBLE"
	case dataBool:
		t = "BOOLEAN"
	case dataDate:
		t = "DATE"
	case dataTimestamp:
		t = "TIMESTAMP"
	case dataJSON:
		t = "STRING (JSON text)"
	case dataList:
		t = "LIST<" + n.elem.typeName() + ">"
	case dataObject:
		t = "STRUCT<"
		for i, f := range n.fields {
			if i > 0 {
				t += ", "
			}
			t += f.name + " " + f.node.typeName()
		}
		t += ">"
	}
	if !n.optional {
		t += " NOT NULL"
	}
	return t
}

// node maps one schema node; path names it for Text.
func (d *DataSchema) node(s orderedObject, path string, depth int) *dataNode {
	asJSON := func() *dataNode {
		d.text = append(d.text, path)
		return &dataNode{kind: dataJSON, optional: true}
	}
	if depth > maxDataDepth {
		return asJSON()
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf", "$ref", "not", "if", "patternProperties"} {
		if _, ok := s.get(k); ok {
			return asJSON()
		}
	}
	typ, nullable, ok := schemaType(s)
	if !ok {
		return asJSON()
	}
	n := &dataNode{optional: nullable}
	switch typ {
	case "string":
		n.kind = dataString
		switch f, _ := s.get("format"); f {
		case "date":
			n.kind = dataDate
		case "date-time":
			n.kind = dataTimestamp
		}
	case "integer":
		n.kind = dataInt
	case "number":
		n.kind = dataFloat
	case "boolean":
		n.kind = dataBool
	case "array":
		items, ok := s.get("items")
		io, isObj := items.(orderedObject)
		if !ok || !isObj {
			return asJSON()
		}
		n.kind, n.elem = dataList, d.node(io, path+"[]", depth+1)
	case "object":
		props, _ := s.get("properties")
		po, isObj := props.(orderedObject)
		if ap, ok := s.get("additionalProperties"); ok && ap != false {
			return asJSON() // free properties have no columns
		}
		if !isObj || len(po) == 0 {
			return asJSON()
		}
		required := map[string]bool{}
		if r, ok := s.get("required"); ok {
			if l, ok := r.([]any); ok {
				for _, x := range l {
					if name, ok := x.(string); ok {
						required[name] = true
					}
				}
			}
		}
		n.kind = dataObject
		n.index = make(map[string]int, len(po))
		for _, p := range po {
			if _, dup := n.index[p.key]; dup {
				continue // a property that repeats counts once
			}
			n.index[p.key] = len(n.fields)
			ps, ok := p.value.(orderedObject)
			if !ok {
				ps = orderedObject{} // true/false schemas: any value
			}
			child := d.node(ps, path+"."+p.key, depth+1)
			if !required[p.key] {
				child.optional = true
			}
			n.fields = append(n.fields, dataField{name: p.key, node: child})
		}
	default:
		return asJSON()
	}
	return n
}

// schemaType returns the type of a schema node: its "type" (with "null"
// in a list of two making it nullable), or the type of its enum's or
// const's values when they all have one. ok is false when there is none.
func schemaType(s orderedObject) (typ string, nullable, ok bool) {
	switch t, _ := s.get("type"); t := t.(type) {
	case string:
		return t, false, true
	case []any:
		var types []string
		for _, x := range t {
			if x == "null" {
				nullable = true
			} else if name, ok := x.(string); ok {
				types = append(types, name)
			}
		}
		if len(types) == 1 {
			return types[0], nullable, true
		}
		return "", false, false
	}
	var values []any
	if e, ok := s.get("enum"); ok {
		values, _ = e.([]any)
	} else if c, ok := s.get("const"); ok {
		values = []any{c}
	}
	for _, v := range values {
		var t string
		switch v.(type) {
		case nil:
			nullable = true
			continue
		case string:
			t = "string"
		case bool:
			t = "boolean"
		case json.Number:
			t = "number"
		default:
			return "", false, false
		}
		if typ != "" && typ != t {
			return "", false, false
		}
		typ = t
	}
	if typ == "" {
		if _, ok := s.get("properties"); ok {
			return "object", false, true
		}
		return "", false, false
	}
	return typ, nullable, true
}

// node returns the Parquet node of the layout: an optional struct named
// data in the output's schema.
func (d *DataSchema) parquetNode() parquet.Node { return d.root.parquet() }

func (n *dataNode) parquet() parquet.Node {
	var p parquet.Node
	switch n.kind {
	case dataString, dataJSON:
		p = parquet.String()
	case dataInt:
		p = parquet.Leaf(parquet.Int64Type)
	case dataFloat:
		p = parquet.Leaf(parquet.DoubleType)
	case dataBool:
		p = parquet.Leaf(parquet.BooleanType)
	case dataDate:
		p = parquet.Date()
	case dataTimestamp:
		p = parquet.Timestamp(parquet.Microsecond)
	case dataList:
		p = parquet.List(n.elem.parquet())
	case dataObject:
		fields := make([]parquet.Field, len(n.fields))
		for i, f := range n.fields {
			fields[i] = field(f.name, f.node.parquet())
		}
		p = group(fields...)
	}
	if n.optional {
		p = parquet.Optional(p)
	}
	return p
}

// dataStep is one node on the path from the root of a layout to a leaf
// column: the node, and for an object the index of the field the path
// goes on through.
type dataStep struct {
	node  *dataNode
	field int
}

// leafPaths returns the path from n to each of its leaf columns, in
// column order.
func leafPaths(n *dataNode) [][]dataStep {
	var paths [][]dataStep
	var walk func(n *dataNode, path []dataStep)
	walk = func(n *dataNode, path []dataStep) {
		switch n.kind {
		case dataObject:
			for i, f := range n.fields {
				walk(f.node, append(path, dataStep{node: n, field: i}))
			}
		case dataList:
			walk(n.elem, append(path, dataStep{node: n}))
		default:
			paths = append(paths, append(slices.Clone(path), dataStep{node: n}))
		}
	}
	walk(n, nil)
	return paths
}

// dataObj is an object conformed to the layout: the values of its fields
// in the layout's order.
type dataObj []any

// conform checks the JSON value raw (valid JSON, without surrounding
// space; nil for a missing value) against the layout n and returns it in
// the form encodeData writes: nil for null, dataObj for an object, []any
// for a list, a parquet.Value for a leaf. ok is false when raw does not
// fit n and n is not nullable: then its nearest nullable ancestor is
// written as null (the root, data, always is). A value that does not fit
// a nullable node is written as null. Values do not fit when they are
// missing or null where the layout is not nullable, of another JSON type,
// an integer out of the range of INT64 (or, written with a fraction or an
// exponent, beyond 2^53), or a date or time that does not parse. Object
// members that are not in the layout are left out; of a member that
// repeats, the last counts. Leaf values may point into raw.
func conform(n *dataNode, raw []byte) (out any, ok bool) {
	if raw == nil || string(raw) == "null" {
		return nil, n.optional
	}
	switch n.kind {
	case dataObject:
		if raw[0] != '{' {
			return nil, n.optional
		}
		members, err := parseInput(raw, nil)
		if err != nil {
			return nil, n.optional
		}
		fields := make([][]byte, len(n.fields))
		for _, m := range members {
			if i, ok := n.index[string(m.key)]; ok {
				fields[i] = m.value
			}
		}
		vals := make(dataObj, len(n.fields))
		for i, f := range n.fields {
			c, ok := conform(f.node, fields[i])
			if !ok {
				return nil, n.optional
			}
			vals[i] = c
		}
		return vals, true
	case dataList:
		if raw[0] != '[' {
			return nil, n.optional
		}
		out := []any{}
		for i := skipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
			end := valueEnd(raw, i)
			if end < 0 {
				return nil, n.optional
			}
			c, ok := conform(n.elem, raw[i:end])
			if !ok {
				return nil, n.optional
			}
			out = append(out, c)
			if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
		return out, true
	}
	val, fits := leafValue(n.kind, raw)
	if !fits {
		return nil, n.optional
	}
	return val, true
}

// encodeData writes the leaf columns of a data layout for one row: v is
// the row's value as conform returns it (nil when the row has none). Each
// leaf column gets its values in turn, with the repetition and definition
// levels of the Dremel encoding.
func (e *rowEncoder) encodeData(paths [][]dataStep, v any) {
	for _, path := range paths {
		e.walkLeaf(path, v, 0, 0, 0)
		e.col++
	}
}

// walkLeaf writes the values that v, the value of path[0].node, holds for
// the leaf at the end of path. rep and def are the repetition and
// definition levels of v's position, and depth the number of lists above
// it.
func (e *rowEncoder) walkLeaf(path []dataStep, v any, rep, def, depth int) {
	n := path[0].node
	if v == nil {
		// conform lets nil through only where the node is nullable.
		e.add(parquet.Value{}, rep, def)
		return
	}
	if n.optional {
		def++
	}
	switch n.kind {
	case dataObject:
		e.walkLeaf(path[1:], v.(dataObj)[path[0].field], rep, def, depth)
	case dataList:
		arr := v.([]any)
		if len(arr) == 0 {
			e.add(parquet.Value{}, rep, def) // an empty list
			return
		}
		for j, el := range arr {
			r := rep
			if j > 0 {
				r = depth + 1
			}
			e.walkLeaf(path[1:], el, r, def+1, depth+1)
		}
	default:
		e.add(v.(parquet.Value), rep, def)
	}
}

// maxExactInt is the largest integer magnitude that a double holds
// exactly.
const maxExactInt = 1 << 53

// leafValue converts the JSON value raw (not null) to a leaf column
// value; ok is false when it does not fit the column.
func leafValue(kind dataKind, raw []byte) (val parquet.Value, ok bool) {
	isString := raw[0] == '"'
	isNumber := raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9'
	switch kind {
	case dataString:
		if isString {
			return parquet.ByteArrayValue(unquote(raw)), true
		}
	case dataJSON:
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return parquet.Value{}, false
		}
		text := b.Bytes()
		if !utf8.Valid(text) {
			text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
		}
		return parquet.ByteArrayValue(text), true
	case dataInt:
		if isNumber {
			n := json.Number(raw)
			if i, err := n.Int64(); err == nil {
				return parquet.Int64Value(i), true
			}
			// 1e3 and 10.0 are integers to JSON Schema.
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
				return parquet.Int64Value(int64(f)), true
			}
		}
	case dataFloat:
		if isNumber {
			if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
				return parquet.DoubleValue(f), true
			}
		}
	case dataBool:
		switch string(raw) {
		case "true":
			return parquet.BooleanValue(true), true
		case "false":
			return parquet.BooleanValue(false), true
		}
	case dataDate:
		if isString {
			if t, err := time.Parse(time.DateOnly, string(unquote(raw))); err == nil {
				return parquet.Int32Value(int32(t.Unix() / 86400)), true
			}
		}
	case dataTimestamp:
		if isString {
			if t, ok := parseDateTime(string(unquote(raw))); ok {
				return parquet.Int64Value(t.UnixMicro()), true
			}
		}
	}
	return parquet.Value{}, false
}

// parseDateTime parses an RFC 3339 date-time as JSON Schema's date-time
// format admits it: T and Z in either case, and a leap second (23:59:60),
// which becomes the first instant of the next minute.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.ToUpper(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	// A leap second: parse it as :59 and add the second back.
	if i := strings.IndexByte(s, 'T'); i >= 0 && len(s) >= i+9 && s[i+7:i+9] == "60" {
		if t, err := time.Parse(time.RFC3339Nano, s[:i+7]+"59"+s[i+9:]); err == nil {
			return t.Add(time.Second), true
		}
	}
	return time.Time{}, false
}

// dataValid reports whether raw is empty or valid JSON.
func dataValid(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || json.Valid(raw)
}

// orderedObject is a JSON object that keeps its keys' order.
type orderedObject []orderedMember

type orderedMember struct {
	key   string
	value any
}

func (o orderedObject) get(key string) (any, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

// decodeOrdered decodes JSON with objects as orderedObject, numbers as
// json.Number and arrays as []any.
func decodeOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o orderedObject
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, orderedMember{k, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if o == nil {
				o = orderedObject{}
			}
			return o, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	return tok, nil
}
