package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
)

// DataSchema is the Parquet layout of a structured answer (the data
// field), built from the JSON Schema the answers are validated against.
// Use [NewDataSchema]; the zero value is not usable.
//
// The mapping is: string → STRING; integer → INT64; number → DOUBLE;
// boolean → BOOLEAN; a string with format date → DATE, with format
// date-time → TIMESTAMP (microseconds, UTC); enum and const of strings →
// STRING; an array with items → LIST of the items; an object with
// properties → a struct of them, in the schema's order. A property that
// is not required, or whose type admits null, is nullable. Anything else
// (oneOf, anyOf, allOf, $ref, an object without properties or with free
// additionalProperties, an array without items, an enum of mixed types, a
// list of types) is kept as its JSON text in a STRING column; [DataSchema.Text]
// lists those columns.
type DataSchema struct {
	root *dataNode
	text []string // paths of the columns kept as JSON text
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
	elem     *dataNode   // dataList
	fields   []dataField // dataObject, in schema order
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
		for _, p := range po {
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

// leafCount returns the number of leaf columns under n.
func (n *dataNode) leafCount() int {
	switch n.kind {
	case dataList:
		return n.elem.leafCount()
	case dataObject:
		c := 0
		for _, f := range n.fields {
			c += f.node.leafCount()
		}
		return c
	}
	return 1
}

// encodeData writes the data columns of one row: v is the decoded answer
// (nil when the row has none). Each leaf column gets its values in turn,
// with the repetition and definition levels of the Dremel encoding.
func (e *rowEncoder) encodeData(n *dataNode, v any) {
	// Each leaf is written by walking v from the root along the leaf's
	// path; walkLeaf does that for one leaf at a time.
	var paths [][]*dataNode
	var collect func(n *dataNode, path []*dataNode)
	collect = func(n *dataNode, path []*dataNode) {
		path = append(path, n)
		switch n.kind {
		case dataObject:
			for _, f := range n.fields {
				collect(f.node, path)
			}
		case dataList:
			collect(n.elem, path)
		default:
			paths = append(paths, append([]*dataNode(nil), path...))
		}
	}
	collect(n, nil)
	for _, path := range paths {
		e.walkLeaf(path, 0, v, 0, 0, 0)
		e.col++
	}
}

// walkLeaf writes the values of the leaf at the end of path found in v
// (the value of path[i]); rep and def are the levels so far, and depth
// the repetition depth (lists passed).
func (e *rowEncoder) walkLeaf(path []*dataNode, i int, v any, rep, def, depth int) {
	n := path[i]
	if n.optional {
		if v == nil {
			e.add(parquet.Value{}, rep, def)
			return
		}
		def++
	}
	switch n.kind {
	case dataObject:
		obj, _ := v.(map[string]any)
		next := path[i+1]
		var child any
		for _, f := range n.fields {
			if f.node == next {
				child = obj[f.name]
				break
			}
		}
		e.walkLeaf(path, i+1, child, rep, def, depth)
	case dataList:
		arr, _ := v.([]any)
		if len(arr) == 0 {
			e.add(parquet.Value{}, rep, def) // an empty list
			return
		}
		for j, el := range arr {
			r := rep
			if j > 0 {
				r = depth + 1
			}
			e.walkLeaf(path, i+1, el, r, def+1, depth+1)
		}
	default:
		val, ok := leafValue(n.kind, v)
		if !ok {
			// A value the schema let through that has no column value (a
			// required value that is null): written as null where the
			// column allows it, else as the zero value.
			if n.optional {
				e.add(parquet.Value{}, rep, def-1)
				return
			}
			val = zeroLeaf(n.kind)
		}
		e.add(val, rep, def)
	}
}

// leafValue converts a decoded JSON value to a leaf column value.
func leafValue(kind dataKind, v any) (parquet.Value, bool) {
	switch kind {
	case dataString:
		if s, ok := v.(string); ok {
			return strValue(s), true
		}
	case dataJSON:
		if v == nil {
			return parquet.Value{}, false
		}
		b, err := json.Marshal(v)
		if err != nil {
			return parquet.Value{}, false
		}
		return parquet.ByteArrayValue(b), true
	case dataInt:
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return parquet.Int64Value(i), true
			}
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return parquet.Int64Value(int64(f)), true
			}
		}
	case dataFloat:
		if n, ok := v.(json.Number); ok {
			if f, err := strconv.ParseFloat(n.String(), 64); err == nil {
				return parquet.DoubleValue(f), true
			}
		}
	case dataBool:
		if b, ok := v.(bool); ok {
			return parquet.BooleanValue(b), true
		}
	case dataDate:
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.DateOnly, s); err == nil {
				return parquet.Int32Value(int32(t.Unix() / 86400)), true
			}
		}
	case dataTimestamp:
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return parquet.Int64Value(t.UnixMicro()), true
			}
		}
	}
	return parquet.Value{}, false
}

func zeroLeaf(kind dataKind) parquet.Value {
	switch kind {
	case dataInt, dataTimestamp:
		return parquet.Int64Value(0)
	case dataFloat:
		return parquet.DoubleValue(0)
	case dataBool:
		return parquet.BooleanValue(false)
	case dataDate:
		return parquet.Int32Value(0)
	}
	return parquet.ByteArrayValue(nil)
}

// decodeData decodes a row's data for encodeData: nil for no data.
func decodeData(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
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
