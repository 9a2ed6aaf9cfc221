package sink

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// trickyCells are input values that CSV must quote or that are easy to
// damage: quotes, commas, line ends, leading and trailing space, unicode,
// empty, a lone backslash-dot, a formula.
var trickyCells = []string{
	`He said "hi"`, "a,b,c", "two\nlines", "  padded  ", "Ünïcødé 日本語 🎉", "", `\.`, "=1+2", `"`, "tab\there", "x",
}

// csvInput builds the input of one row from columns and cells, as the
// source package does for a CSV file: every value a JSON string.
func csvInput(t *testing.T, cols, cells []string) json.RawMessage {
	t.Helper()
	b := []byte{'{'}
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(c)
		v, _ := json.Marshal(cells[i])
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}')
}

func writeCSV(t *testing.T, name string, opt CSVOptions, rows []Row) {
	t.Helper()
	w, err := CreateCSV(name, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write row %d: %v", r.Row, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func readCSV(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return recs
}

func TestCSVInputUnchangedInRowOrder(t *testing.T) {
	cols := []string{"name", "a,b", `q"uote`, "ünï", "empty", "nl\ncol"}
	var rows []Row
	var want [][]string
	for i := range 40 {
		cells := make([]string, len(cols))
		for j := range cols {
			cells[j] = trickyCells[(i+j)%len(trickyCells)]
		}
		want = append(want, append(slices.Clone(cells), StatusOK, "", "answer "+cells[0], `["https://a.example/?x=1&y=2"]`))
		rows = append(rows, Row{Row: int64(i + 1), Status: StatusOK, Input: csvInput(t, cols, cells),
			Content: "answer " + cells[0], Citations: []string{"https://a.example/?x=1&y=2"}})
	}
	// A failed row without citations, and rows written out of order.
	rows[3].Status, rows[3].Error, rows[3].Content, rows[3].Citations = StatusError, "HTTP 500: boom, \"bad\"", "", nil
	want[3] = append(want[3][:len(cols)], StatusError, "HTTP 500: boom, \"bad\"", "", "")
	rows[5].Citations = []string{}
	want[5][len(want[5])-1] = "[]"
	shuffled := slices.Clone(rows)
	slices.Reverse(shuffled[10:30])
	shuffled[0], shuffled[39] = shuffled[39], shuffled[0]

	name := filepath.Join(t.TempDir(), "out.csv")
	writeCSV(t, name, CSVOptions{}, shuffled)
	got := readCSV(t, name)
	wantHeader := append(slices.Clone(cols), "status", "error", "content", "citations")
	if !slices.Equal(got[0], wantHeader) {
		t.Errorf("header %q, want %q", got[0], wantHeader)
	}
	if len(got)-1 != len(want) {
		t.Fatalf("got %d rows, want %d", len(got)-1, len(want))
	}
	for i, w := range want {
		if !slices.Equal(got[i+1], w) {
			t.Errorf("row %d:\n got %q\nwant %q", i+1, got[i+1], w)
		}
	}
	if tmp, _ := TempFiles(name); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestCSVJSONLInput(t *testing.T) {
	rows := []Row{
		{Row: 2, Status: StatusOK, Input: json.RawMessage(`{"b":1.50,"a":"x","late":"L2"}`)},
		{Row: 1, Status: StatusOK, Input: json.RawMessage(`{"a":"y","b":true,"o":{"k": [1, 2]},"n":null}`)},
		{Row: 3, Status: StatusError, Error: "bad input", Input: json.RawMessage(`null`)},
		{Row: 4, Status: StatusOK, Input: json.RawMessage(`{"a":"first","a":"last","b":"\u00e9\"\\"}`)},
	}
	name := filepath.Join(t.TempDir(), "out.csv")
	writeCSV(t, name, CSVOptions{}, rows)
	got := readCSV(t, name)
	want := [][]string{
		// Columns in the order first seen: the first row written brings b,
		// a, late; the second o and n.
		{"b", "a", "late", "o", "n", "status", "error", "content", "citations"},
		{"true", "y", "", `{"k": [1, 2]}`, "", "ok", "", "", ""},
		{"1.50", "x", "L2", "", "", "ok", "", "", ""},
		{"", "", "", "", "", "error", "bad input", "", ""},
		{"é\"\\", "last", "", "", "", "ok", "", "", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestCSVDataColumns(t *testing.T) {
	d, err := NewDataSchema([]byte(`{"type":"object","required":["ceo"],"properties":{
		"ceo":{"type":"string"},"founded":{"type":"integer"},"public":{"type":"boolean"},
		"sources":{"type":"array","items":{"type":"string"}},"hq":{"type":"object","properties":{"city":{"type":"string"}}},
		"note":{"type":["string","null"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	in := json.RawMessage(`{"company":"Acme"}`)
	rows := []Row{
		{Row: 1, Status: StatusOK, Input: in, Content: "ignored",
			Data: json.RawMessage(`{"ceo":"Ann \"A\", Jr.","founded":1999,"public":false,"sources":["https://x.example/?a=1&b=2"],"hq":{ "city" : "Paris" },"note":null,"extra":1}`)},
		{Row: 2, Status: StatusError, Error: "answer does not match the schema: /ceo: want string", Input: in, Content: `{"ceo":42}`},
		{Row: 3, Status: StatusOK, Input: in, Data: json.RawMessage(`{"ceo":"Bo"}`)},
	}
	name := filepath.Join(t.TempDir(), "out.csv")
	writeCSV(t, name, CSVOptions{Data: d}, rows)
	want := [][]string{
		{"company", "status", "error", "ceo", "founded", "public", "sources", "hq", "note"},
		{"Acme", "ok", "", `Ann "A", Jr.`, "1999", "false", `["https://x.example/?a=1&b=2"]`, `{"city":"Paris"}`, ""},
		{"Acme", "error", "answer does not match the schema: /ceo: want string", "", "", "", "", "", ""},
		{"Acme", "ok", "", "Bo", "", "", "", "", ""},
	}
	if got := readCSV(t, name); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestCSVSearchColumns(t *testing.T) {
	rows := sampleRows()[:1]
	rows[0].Input = json.RawMessage(`{"q":"acme"}`)
	name := filepath.Join(t.TempDir(), "out.csv")
	writeCSV(t, name, CSVOptions{Search: true}, append(rows, Row{Row: 2, Status: StatusError, Error: "e", Input: json.RawMessage(`{"q":"b"}`)}))
	want := [][]string{
		{"q", "status", "error", "urls", "results"},
		{"acme", "ok", "", `["https://acme.example/?a=1&b=2","https://b.example"]`,
			`[{"title":"Acme","url":"https://acme.example/?a=1&b=2","snippet":"HQ <b>Springfield</b>","date":"2024-01-02","last_updated":"2024-02-03"},` +
				`{"title":"Second","url":"https://b.example","snippet":"","date":"","last_updated":""}]`},
		{"b", "error", "e", "", ""},
	}
	if got := readCSV(t, name); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestCSVEdgeCases(t *testing.T) {
	dir := t.TempDir()
	t.Run("no rows", func(t *testing.T) {
		name := filepath.Join(dir, "empty.csv")
		writeCSV(t, name, CSVOptions{}, nil)
		if b, _ := os.ReadFile(name); string(b) != "status,error,content,citations\n" {
			t.Errorf("got %q", b)
		}
	})
	t.Run("one input column, empty", func(t *testing.T) {
		name := filepath.Join(dir, "one.csv")
		writeCSV(t, name, CSVOptions{}, []Row{{Row: 1, Status: StatusOK, Input: json.RawMessage(`{"a":""}`)}, {Row: 2, Status: StatusOK}})
		if b, _ := os.ReadFile(name); string(b) != "a,status,error,content,citations\n,ok,,,\n,ok,,,\n" {
			t.Errorf("got %q", b)
		}
	})
	t.Run("invalid rows", func(t *testing.T) {
		name := filepath.Join(dir, "invalid.csv")
		w, err := CreateCSV(name, CSVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []Row{{Row: 1, Input: json.RawMessage(`[1]`)}, {Row: 2, Input: json.RawMessage(`{"a":`)}, {Row: 3, Data: json.RawMessage(`{`)}} {
			if err := w.Write(r); !errors.Is(err, ErrInvalidRow) {
				t.Errorf("row %d: %v, want ErrInvalidRow", r.Row, err)
			}
		}
		if err := w.Write(Row{Row: 4, Status: StatusOK, Input: json.RawMessage(`{"a":"b"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readCSV(t, name); len(got) != 2 || got[1][0] != "b" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("atomic", func(t *testing.T) {
		name := filepath.Join(dir, "atomic.csv")
		if err := os.WriteFile(name, []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := CreateCSV(name, CSVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(Row{Row: 1, Status: StatusOK, Input: json.RawMessage(`{"a":"b"}`)}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(name); string(b) != "old\n" {
			t.Errorf("before Close the file is %q", b)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(name); string(b) != "old\n" {
			t.Errorf("after Abort the file is %q", b)
		}
		if tmp, _ := TempFiles(name); len(tmp) != 0 {
			t.Errorf("temporary files left after Abort: %v", tmp)
		}
		if err := w.Write(Row{Row: 2}); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Abort: %v", err)
		}
		writeCSV(t, name, CSVOptions{}, []Row{{Row: 1, Status: StatusOK}})
		fi, err := os.Stat(name)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the new file: %v, mode %v; want the mode of the file it replaces", err, fi.Mode())
		}
	})
	t.Run("standard output", func(t *testing.T) {
		if _, err := CreateCSV(Stdout, CSVOptions{}); err == nil || !strings.Contains(err.Error(), "standard output") {
			t.Errorf("CreateCSV(-): %v", err)
		}
	})
}

// TestDuckDBReadsCSV checks that DuckDB's read_csv reads the file with its
// header, and that every input column comes back unchanged.
func TestDuckDBReadsCSV(t *testing.T) {
	cols := []string{"company", "a,b", `say "x"`, "ünï", "empty"}
	var rows []Row
	for i := range 30 {
		cells := make([]string, len(cols))
		for j := range cols {
			cells[j] = trickyCells[(i*3+j)%len(trickyCells)]
		}
		rows = append(rows, Row{Row: int64(i + 1), Status: StatusOK, Input: csvInput(t, cols, cells), Content: "c", Citations: []string{"u"}})
	}
	name := filepath.Join(t.TempDir(), "out.csv")
	writeCSV(t, name, CSVOptions{}, rows)
	got := duckdbRun(t, name, `SELECT * FROM FILE_TEXT`)

	var names []string
	for _, c := range got.Describe {
		names = append(names, c.Name)
	}
	if want := append(slices.Clone(cols), "status", "error", "content", "citations"); !slices.Equal(names, want) {
		t.Errorf("read_csv columns %q, want %q", names, want)
	}
	if len(got.Queries[0]) != len(rows) {
		t.Fatalf("read_csv: %d rows, want %d", len(got.Queries[0]), len(rows))
	}
	for i, r := range rows {
		var in map[string]string
		if err := json.Unmarshal(r.Input, &in); err != nil {
			t.Fatal(err)
		}
		g := got.Queries[0][i]
		for _, c := range cols {
			want := any(in[c])
			if in[c] == "" {
				want = nil // an empty cell reads as NULL
			}
			if g[c] != want {
				t.Errorf("row %d column %q: got %q, want %q", i+1, c, g[c], want)
			}
		}
	}
}
