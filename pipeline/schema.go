package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// DefaultSchemaRetries is how many more times a row whose answer does not
// match the job's schema is asked, when the Job does not say.
const DefaultSchemaRetries = 1

// Schema is a JSON Schema that the answers of a job must match: it is sent
// as the response_format of agent and chat requests, and every answer is
// validated against it (formats such as date and date-time asserted).
type Schema struct {
	// Name is the name sent with the schema.
	Name string
	// JSON is the schema as given, compacted.
	JSON json.RawMessage
	sch  *jsonschema.Schema
}

// SchemaDefError reports a schema that cannot be used: not JSON, a root
// that is not an object, an unknown type, a keyword of the wrong shape.
// Pointer is the JSON pointer of the offending part of the schema ("" for
// the root); Line and Column are set for a schema that is not JSON.
type SchemaDefError struct {
	File         string
	Pointer      string
	Line, Column int
	Reason       string
}

func (e *SchemaDefError) Error() string {
	where := e.File
	if where == "" {
		where = "schema"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", where, e.Line, e.Column, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", where, pointerText(e.Pointer), e.Reason)
}

// SchemaError reports an answer that does not match the job's schema:
// Pointer is the JSON pointer of the offending value in the answer ("" for
// the answer as a whole).
type SchemaError struct {
	Pointer, Reason string
}

func (e *SchemaError) Error() string {
	return "answer does not match the schema: " + pointerText(e.Pointer) + ": " + e.Reason
}

// pointerText shows a JSON pointer, the root as "(root)".
func pointerText(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// schemaURL names the schema resource inside the compiler.
const schemaURL = "file:///schema.json"

// CompileSchema checks and compiles a JSON Schema for structured answers.
// file names it in errors, and its base name (letters, digits, _ and -)
// names it in requests. The root must be an object schema, as the Agent
// API requires. Errors are *SchemaDefError.
func CompileSchema(file string, raw []byte) (*Schema, error) {
	defErr := func(ptr, format string, a ...any) error {
		return &SchemaDefError{File: file, Pointer: ptr, Reason: fmt.Sprintf(format, a...)}
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		e := &SchemaDefError{File: file, Reason: "not JSON: " + err.Error()}
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			e.Line, e.Column = lineCol(raw, se.Offset-1) // Offset is just past the bad byte
		} else {
			e.Line, e.Column = lineCol(raw, dec.InputOffset())
		}
		return nil, e
	}
	if dec.More() {
		e := &SchemaDefError{File: file, Reason: "more than one JSON value"}
		e.Line, e.Column = lineCol(raw, dec.InputOffset())
		return nil, e
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, defErr("", "the schema must be a JSON object")
	}
	if t, _ := obj["type"].(string); t != "object" {
		return nil, defErr("/type", `the root must be an object schema ("type": "object"), as the Agent API requires; got %s`, jsonText(obj["type"]))
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(schemaURL, root); err != nil {
		return nil, defErr("", "%v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		if sve, ok := errors.AsType[*jsonschema.SchemaValidationError](err); ok {
			if ve, ok := errors.AsType[*jsonschema.ValidationError](sve.Err); ok {
				ptr, reason := leafError(ve)
				return nil, defErr(ptr, "%s", reason)
			}
		}
		return nil, defErr("", "%s", strings.ReplaceAll(err.Error(), schemaURL, file))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, defErr("", "%v", err)
	}
	return &Schema{Name: schemaName(file), JSON: buf.Bytes(), sch: sch}, nil
}

// Validate parses an answer as JSON (a Markdown code fence around it is
// allowed) and checks it against the schema. It returns the answer as
// compact JSON, or a *SchemaError.
func (s *Schema) Validate(answer string) (json.RawMessage, error) {
	text := strings.TrimSpace(answer)
	if t, ok := strings.CutPrefix(text, "```"); ok {
		if i := strings.IndexByte(t, '\n'); i >= 0 {
			t = t[i+1:]
		}
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(t), "```"))
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, &SchemaError{Reason: "not JSON: " + firstLine(err.Error())}
	}
	if err := s.sch.Validate(inst); err != nil {
		if ve, ok := errors.AsType[*jsonschema.ValidationError](err); ok {
			ptr, reason := leafError(ve)
			return nil, &SchemaError{Pointer: ptr, Reason: reason}
		}
		return nil, &SchemaError{Reason: firstLine(err.Error())}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return nil, &SchemaError{Reason: "not JSON: " + err.Error()}
	}
	return buf.Bytes(), nil
}

// ResponseFormat returns the response_format that asks the Agent API
// (and OpenAI-compatible chat endpoints) for answers matching s.
func (s *Schema) ResponseFormat() *pplx.ResponseFmt {
	return &pplx.ResponseFmt{Type: "json_schema", JSONSchema: &pplx.JSONSchema{Name: s.Name, Schema: s.JSON}}
}

// leafError returns the instance location and message of the most
// specific error of a validation error tree: the first of its deepest
// leaves.
func leafError(ve *jsonschema.ValidationError) (pointer, reason string) {
	leaf, depth := ve, -1
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if len(e.InstanceLocation) > depth {
				leaf, depth = e, len(e.InstanceLocation)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return jsonPointer(leaf.InstanceLocation), leaf.ErrorKind.LocalizedString(english)
}

// english prints the validator's messages.
var english = message.NewPrinter(language.English)

// jsonPointer joins reference tokens into a JSON pointer (RFC 6901).
func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// schemaName makes a response_format name of a file name.
func schemaName(file string) string {
	base := file
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	base = nonName.ReplaceAllString(base, "_")
	if base == "" || base == "_" {
		return "answer"
	}
	return base
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// lineCol returns the 1-based line and column of byte offset off in b.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	prefix := b[:off]
	line = bytes.Count(prefix, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(prefix, '\n') + 1) + 1
	return line, col
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func jsonText(v any) string {
	if v == nil {
		return "none"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
