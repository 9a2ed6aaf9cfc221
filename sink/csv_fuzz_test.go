package sink

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCSVCells writes rows whose input key and value and answer are the
// fuzzed strings, written out of order, and checks that encoding/csv reads
// every cell back as it was (in value: encoding/csv reads \r\n in a quoted
// field as \n; invalid UTF-8 is replaced as encoding/json replaces it).
func FuzzCSVCells(f *testing.F) {
	for _, s := range [][2]string{
		{"name", "plain"}, {"a,b", `say "hi"`}, {"nl\nkey", "two\nlines"}, {"k", "crlf\r\nend"}, {"k", ""},
		{"", " lead"}, {"ü", "日本語 🎉"}, {"k", `\.`}, {"k", "\xff\xfe"}, {"k", "\r"}, {"status", `"`},
	} {
		f.Add(s[0], s[1])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, key, value string) {
		if key == "first" {
			return
		}
		in := func(v string) json.RawMessage {
			k, _ := json.Marshal(key)
			val, _ := json.Marshal(v)
			return json.RawMessage(`{"first":"1",` + string(k) + ":" + string(val) + "}")
		}
		name := filepath.Join(dir, "out.csv")
		w, err := CreateCSV(name, CSVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rows := []Row{
			{Row: 2, Status: StatusOK, Input: in(value), Content: value},
			{Row: 1, Status: StatusError, Error: value, Input: json.RawMessage(`{"first":"0"}`)},
		}
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("encoding/csv cannot read %q: %v", b, err)
		}
		// What encoding/json (for inputs) or the writer (for answers) and
		// then encoding/csv make of s.
		input := func(s string) string {
			bs, _ := json.Marshal(s)
			_ = json.Unmarshal(bs, &s)
			return strings.ReplaceAll(s, "\r\n", "\n")
		}
		answer := func(s string) string {
			return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\r\n", "\n")
		}
		wantRecs := [][]string{
			{"first", input(key), "status", "error", "content", "citations"},
			{"0", "", "error", answer(value), "", ""},
			{"1", input(value), "ok", "", answer(value), ""},
		}
		if len(got) != len(wantRecs) {
			t.Fatalf("got %q, want %q", got, wantRecs)
		}
		for i := range wantRecs {
			if strings.Join(got[i], "\x00") != strings.Join(wantRecs[i], "\x00") {
				t.Errorf("record %d: got %q, want %q", i, got[i], wantRecs[i])
			}
		}
	})
}

// FuzzParquetData writes a row whose data is the fuzzed JSON under the
// layout of dataTestSchema, between two rows with data, and checks that it
// is written or refused as an ErrInvalidRow, never a panic, and that the
// file reads back.
func FuzzParquetData(f *testing.F) {
	for _, tc := range dataRowCases() {
		f.Add([]byte(tc.data))
	}
	f.Add([]byte(`{"name":"x","n":1,"tags":[],"grid":[[[1]]],"people":[[]]}`))
	f.Add([]byte(`{"name":"x","n":1,"tags":[],"at":"2024-01-01T00:00:00.123456789-23:59","day":"0001-01-01"}`))
	f.Add([]byte(`{"name":`))
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		w, err := NewParquet(&buf, ParquetOptions{Data: d, Compression: "none"})
		if err != nil {
			t.Fatal(err)
		}
		good := json.RawMessage(`{"name":"x","n":1,"tags":["t"]}`)
		in := json.RawMessage(`{"k":"v"}`)
		if err := w.Write(Row{Row: 1, Input: in, Data: good}); err != nil {
			t.Fatal(err)
		}
		werr := w.Write(Row{Row: 2, Input: in, Data: data})
		if werr != nil && !errors.Is(werr, ErrInvalidRow) {
			t.Fatalf("Write: %v, want nil or ErrInvalidRow", werr)
		}
		if werr != nil && json.Valid(data) {
			t.Fatalf("Write of valid JSON: %v", werr)
		}
		if err := w.Write(Row{Row: 3, Input: in, Data: good}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rows := readParquet(t, buf.Bytes()).rows
		want := map[string]any{"name": "x", "n": int64(1), "tags": []any{"t"}}
		for _, i := range []int{0, len(rows) - 1} {
			got, _ := rows[i]["data"].(map[string]any)
			if got["name"] != want["name"] || got["n"] != want["n"] {
				t.Fatalf("row %d around the fuzzed one: data %#v", i, rows[i]["data"])
			}
		}
	})
}
