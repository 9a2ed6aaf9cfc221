package sink

import (
	"slices"
	"testing"
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
