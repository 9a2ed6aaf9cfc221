package source_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/pplx-batch/pplx-batch/source"
)

func Example() {
	input := "company,country\n" +
		"\"Acme, Inc.\",US\n" +
		"Globex\n" + // one field short
		"Initech,US\n"
	r, err := source.NewReader(strings.NewReader(input), "companies.csv", source.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println("columns:", r.Columns())
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		var pe *source.ParseError
		if errors.As(err, &pe) {
			// A bad row: report it and go on with the next one.
			fmt.Printf("row %d: %v\n", rec.Row, err)
			continue
		}
		if err != nil {
			log.Fatal(err) // I/O error: fatal
		}
		fmt.Printf("row %d (line %d): %s -> %s\n", rec.Row, rec.Line, rec.Values["company"], rec.Raw)
	}
	// Output:
	// columns: [company country]
	// row 1 (line 2): Acme, Inc. -> {"company":"Acme, Inc.","country":"US"}
	// row 2: source: companies.csv:3:1: wrong number of fields (got 1, want 2)
	// row 3 (line 4): Initech -> {"company":"Initech","country":"US"}
}
