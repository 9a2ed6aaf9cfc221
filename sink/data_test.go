package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestDataSchemaColumns(t *testing.T) {
	tests := []struct {
		name, schema string
		want, text   []string
	}{
		{"every type", `{"type":"object","required":["s","i","n","b","e","l","o","d","t"],"properties":{
			"s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},"b":{"type":"boolean"},
			"e":{"enum":["x","y"]},"l":{"type":"array","items":{"type":"string"}},
			"o":{"type":"object","required":["k"],"properties":{"k":{"type":"string"},"m":{"type":"integer"}}},
			"d":{"type":"string","format":"date"},"t":{"type":"string","format":"date-time"}}}`,
			[]string{"data.s STRING NOT NULL", "data.i INT64 NOT NULL", "data.n DOUBLE NOT NULL", "data.b BOOLEAN NOT NULL",
				"data.e STRING NOT NULL", "data.l LIST<STRING NOT NULL> NOT NULL", "data.o.k STRING NOT NULL", "data.o.m INT64",
				"data.d DATE NOT NULL", "data.t TIMESTAMP NOT NULL"}, nil},
		{"optional and nullable", `{"type":"object","required":["a"],"properties":{"a":{"type":["string","null"]},"b":{"type":"integer"}}}`,
			[]string{"data.a STRING", "data.b INT64"}, nil},
		{"no column type", `{"type":"object","properties":{"u":{"oneOf":[{"type":"string"},{"type":"integer"}]},
			"f":{"type":"object","additionalProperties":true},"m":{"enum":["a",1]},"x":{"type":["string","integer"]},"l":{"type":"array"}}}`,
			[]string{"data.u STRING (JSON text)", "data.f STRING (JSON text)", "data.m STRING (JSON text)", "data.x STRING (JSON text)", "data.l STRING (JSON text)"},
			[]string{"data.u", "data.f", "data.m", "data.x", "data.l"}},
		{"list of objects", `{"type":"object","properties":{"people":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}}}}}}`,
			[]string{"data.people LIST<STRUCT<name STRING> NOT NULL>"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDataSchema([]byte(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Columns(); !slices.Equal(got, tc.want) {
				t.Errorf("columns\n got %q\nwant %q", got, tc.want)
			}
			if got := d.Text(); !slices.Equal(got, tc.text) {
				t.Errorf("text columns %q, want %q", got, tc.text)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"type":"string"}`, `{"type":"object"}`, `{`} {
		if _, err := NewDataSchema([]byte(bad)); err == nil {
			t.Errorf("NewDataSchema(%s): no error", bad)
		}
	}
}

// dataTestSchema exercises every mapping: nested lists of structs, lists
// of lists with nullable elements, optional fields, nested structs with a
// required field under an optional one, dates, timestamps, JSON text.
const dataTestSchema = `{
  "type": "object",
  "required": ["name", "n", "tags"],
  "properties": {
    "name": {"type": "string"},
    "n": {"type": "integer"},
    "score": {"type": "number"},
    "ok": {"type": "boolean"},
    "size": {"enum": ["s", "m", "l"]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "people": {"type": "array", "items": {"type": "object", "required": ["who"], "properties": {
      "who": {"type": "string"},
      "age": {"type": "integer"},
      "roles": {"type": "array", "items": {"type": "string"}}}}},
    "grid": {"type": "array", "items": {"type": "array", "items": {"type": ["integer", "null"]}}},
    "day": {"type": "string", "format": "date"},
    "at": {"type": "string", "format": "date-time"},
    "hq": {"type": "object", "properties": {
      "city": {"type": "string"},
      "geo": {"type": "object", "required": ["lat"], "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}}},
    "extra": {"oneOf": [{"type": "string"}, {"type": "object"}]}
  }
}`

// day returns the DATE value of a day: days since 1970-01-01.
func day(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(time.Unix(0, 0)) / (24 * time.Hour))
}

// micros returns the TIMESTAMP(µs) value of an instant.
func micros(t time.Time) int64 { return t.UnixNano() / 1000 }

// dataRowCase is an answer and its data column as parquet-go reads it.
type dataRowCase struct {
	name, data string
	want       any
}

// dataRowCases are answers and their data column as parquet-go reads it
// back (DATE as days, TIMESTAMP as microseconds), written out by hand.
func dataRowCases() []dataRowCase {
	// base is a data value with every optional field null.
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "x", "n": int64(1), "score": nil, "ok": nil, "size": nil, "tags": []any{},
			"people": nil, "grid": nil, "day": nil, "at": nil, "hq": nil, "extra": nil}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	hq := func(city, geo any) map[string]any { return map[string]any{"city": city, "geo": geo} }
	person := func(who, age, roles any) map[string]any {
		return map[string]any{"who": who, "age": age, "roles": roles}
	}
	return []dataRowCase{
		{"every field", `{"name":"Acme ünï <&>","n":-42,"score":2.5,"ok":true,"size":"m","tags":["a","","c"],
			"people":[{"who":"Ann","age":50,"roles":["ceo","founder"]},{"who":"Bob","roles":[]},{"who":"Cy","age":null}],
			"grid":[[1,null,3],[],[4]],"day":"2024-02-29","at":"2024-02-29T10:11:12.345678+02:00",
			"hq":{"city":"Paris","geo":{"lat":48.85,"lon":2.35}},"extra":{"z":1,"a":"<b>"}}`,
			base("name", "Acme ünï <&>", "n", int64(-42), "score", 2.5, "ok", true, "size", "m", "tags", []any{"a", "", "c"},
				"people", []any{person("Ann", int64(50), []any{"ceo", "founder"}), person("Bob", nil, []any{}), person("Cy", nil, nil)},
				"grid", []any{[]any{int64(1), nil, int64(3)}, []any{}, []any{int64(4)}},
				"day", day(2024, 2, 29), "at", micros(time.Date(2024, 2, 29, 8, 11, 12, 345678000, time.UTC)),
				"hq", hq("Paris", map[string]any{"lat": 48.85, "lon": 2.35}), "extra", `{"z":1,"a":"<b>"}`)},
		{"only the required fields", `{"name":"x","n":1,"tags":[]}`, base()},
		{"explicit nulls", `{"name":"x","n":1,"tags":[],"score":null,"people":null,"hq":null,"extra":null,"grid":[[null],[null,2]]}`,
			base("grid", []any{[]any{nil}, []any{nil, int64(2)}})},
		{"a null element where elements are not nullable nulls the list", `{"name":"x","n":1,"tags":[],"grid":[[1],null]}`, base()},
		{"empty lists and structs", `{"name":"x","n":1,"tags":[],"people":[],"grid":[],"hq":{}}`,
			base("people", []any{}, "grid", []any{}, "hq", hq(nil, nil))},
		{"no data", ``, nil},
		{"null data", `null`, nil},
		{"data not an object", `[1,2]`, nil},
		{"a required leaf of the wrong type nulls data", `{"name":42,"n":1,"tags":[]}`, nil},
		{"a required field missing nulls data", `{"n":1,"tags":[]}`, nil},
		{"a required list element of the wrong type nulls data", `{"name":"x","n":1,"tags":["a",2]}`, nil},
		{"an optional leaf of the wrong type is null", `{"name":"x","n":1,"tags":[],"score":"high","ok":"yes","day":"29 Feb 2024","at":"2024-02-29"}`, base()},
		{"a required field under an optional struct nulls the struct", `{"name":"x","n":1,"tags":[],"hq":{"city":"Rome","geo":{"lat":"north"}}}`,
			base("hq", hq("Rome", nil))},
		{"a list element that does not fit nulls the list", `{"name":"x","n":1,"tags":[],"people":[{"who":"Ann"},{"age":3}]}`, base()},
		{"integers", `{"name":"x","n":1e3,"tags":[],"score":7}`, base("n", int64(1000), "score", 7.0)},
		{"integer 10.0", `{"name":"x","n":10.0,"tags":[]}`, base("n", int64(10))},
		{"an integer beyond INT64 nulls data", `{"name":"x","n":1e20,"tags":[]}`, nil},
		{"extreme integers", `{"name":"x","n":-9223372036854775808,"tags":[]}`, base("n", int64(math.MinInt64))},
		{"dates and times", `{"name":"x","n":1,"tags":[],"day":"1900-01-01","at":"1998-12-31t23:59:60z"}`,
			base("day", day(1900, 1, 1), "at", micros(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)))},
		{"unknown keys are left out, a repeated key's last value counts", `{"name":"a","zz":1,"name":"b","n":1,"tags":[]}`, base("name", "b")},
		{"JSON text of a string", `{"name":"x","n":1,"tags":[],"extra":"a \"q\" é"}`, base("extra", `"a \"q\" é"`)},
	}
}

// dataTestRows returns the layout of dataTestSchema, dataRowCases and a
// row for each case.
func dataTestRows(t *testing.T) (*DataSchema, []dataRowCase, []Row) {
	t.Helper()
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		t.Fatal(err)
	}
	cases := dataRowCases()
	var rows []Row
	for i, tc := range cases {
		r := Row{ID: fmt.Sprint(i + 1), Row: int64(i + 1), Status: StatusOK, Input: json.RawMessage(`{"k":"v"}`)}
		if tc.data != "" {
			r.Data = json.RawMessage(tc.data)
		}
		rows = append(rows, r)
	}
	return d, cases, rows
}

func TestParquetDataValues(t *testing.T) {
	d, cases, rows := dataTestRows(t)
	// Small row groups: data spans several.
	for _, groupRows := range []int{3, 1000} {
		pf := readParquet(t, writeParquet(t, ParquetOptions{Data: d, RowGroupRows: groupRows}, rows))
		if len(pf.rows) != len(cases) {
			t.Fatalf("got %d rows, want %d", len(pf.rows), len(cases))
		}
		for i, tc := range cases {
			if got := pf.rows[i]["data"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s (row group %d): data\n got %#v\nwant %#v", tc.name, groupRows, got, tc.want)
			}
			if pf.rows[i]["id"] != rows[i].ID || pf.rows[i]["model"] != "" {
				t.Errorf("%s: the columns around data are wrong: %v", tc.name, pf.rows[i])
			}
		}
	}
}

func TestParquetDataInvalidJSON(t *testing.T) {
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewParquet(io.Discard, ParquetOptions{Data: d})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Write(Row{Row: 1, Input: json.RawMessage(`{"a":"b"}`), Data: json.RawMessage(`{"name":`)})
	if !errors.Is(err, ErrInvalidRow) {
		t.Fatalf("Write: %v, want ErrInvalidRow", err)
	}
	if err := w.Write(Row{Row: 2, Input: json.RawMessage(`{"a":"b"}`), Data: json.RawMessage(`{"name":"x","n":1,"tags":[]}`)}); err != nil {
		t.Fatalf("the writer is not usable after an invalid row: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestParquetDataPending checks that rows held back until the input
// columns are known keep their data (the writer copies it).
func TestParquetDataPending(t *testing.T) {
	d, err := NewDataSchema([]byte(`{"type":"object","properties":{"a":{"type":"string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewParquet(&buf, ParquetOptions{Data: d})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"a":"first"}`)
	if err := w.Write(Row{Row: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	copy(data, `{"a":"xxxxx"}`) // the caller reuses its buffer
	if err := w.Write(Row{Row: 2, Input: json.RawMessage(`{"k":"v"}`), Data: json.RawMessage(`{"a":"second"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf := readParquet(t, buf.Bytes())
	for i, want := range []string{"first", "second"} {
		if got := pf.rows[i]["data"]; !reflect.DeepEqual(got, map[string]any{"a": want}) {
			t.Errorf("row %d: data %#v, want a=%s", i+1, got, want)
		}
	}
}

func TestParquetWithoutDataHasNoDataColumn(t *testing.T) {
	pf := readParquet(t, writeParquet(t, ParquetOptions{}, sampleRows()))
	if pf.file.Root().Column("data") != nil {
		t.Errorf("a file without a data schema has a data column:\n%s", pf.schema)
	}
}

func TestParquetDataSchemaGolden(t *testing.T) {
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		t.Fatal(err)
	}
	got := readParquet(t, writeParquet(t, ParquetOptions{Data: d}, sampleRows())).schema + "\n"
	checkGolden(t, "schema_data.golden", got)
}
