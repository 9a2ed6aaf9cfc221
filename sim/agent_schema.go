package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
)

// maxSchemaDepth bounds the nesting AgentJSONContent follows.
const maxSchemaDepth = 8

// AgentJSONContent returns the text of the server's answer to input when
// the request has a response_format of type json_schema with the given
// schema: one line of JSON that fits the common JSON Schema keywords. An
// object has every property of "properties" (in key order); a string is
// "<property> of <input>" (or the first "enum" value, or "const"); an
// integer or number is derived from the hash of input and the property
// name, clamped to "minimum"/"maximum"; a boolean likewise; a string of
// format "date" or "date-time" a date in 2010-2025; an array has
// max(1, minItems) items of "items"; "anyOf"/"oneOf" take their first
// choice; a list of types its first non-null type. It is a pure function;
// a schema that does not decode gives "{}".
func AgentJSONContent(schema []byte, input string) string {
	var root any
	if json.Unmarshal(schema, &root) != nil {
		return "{}"
	}
	h := sha256.Sum256([]byte(input))
	seed := binary.BigEndian.Uint64(h[:8])
	return string(marshal(fillSchema(root, "value", input, seed, 0)))
}

// AgentInvalidJSONContent returns an answer to input that does not match
// the schema, as a share of answers do with [AgentConfig].PInvalid: for
// half of the inputs (by their hash) the valid answer with the value of
// the first property (in key order) replaced by one of another type, for
// the others a sentence that is not JSON. It is a pure function.
func AgentInvalidJSONContent(schema []byte, input string) string {
	h := sha256.Sum256([]byte(input))
	var root map[string]any
	if h[1]%2 == 0 || json.Unmarshal([]byte(AgentJSONContent(schema, input)), &root) != nil || len(root) == 0 {
		return fmt.Sprintf("Here is what I found about %s: no structured answer.", input)
	}
	keys := make([]string, 0, len(root))
	for k := range root {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	switch root[keys[0]].(type) {
	case string:
		root[keys[0]] = 42
	default:
		root[keys[0]] = "not a " + keys[0]
	}
	return string(marshal(root))
}

func fillSchema(node any, name, input string, seed uint64, depth int) any {
	s, _ := node.(map[string]any)
	if s == nil || depth > maxSchemaDepth {
		return nil
	}
	if v, ok := s["const"]; ok {
		return v
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if c, ok := s[k].([]any); ok && len(c) > 0 {
			return fillSchema(c[0], name, input, seed, depth+1)
		}
	}
	x := mix(seed ^ mix(uint64(len(name))) ^ hashString(name))
	switch schemaType(s) {
	case "object":
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			out[k] = fillSchema(props[k], k, input, seed, depth+1)
		}
		return out
	case "array":
		n := 1
		if m, ok := s["minItems"].(float64); ok && m > 1 {
			n = min(int(m), 16)
		}
		out := make([]any, n)
		for i := range out {
			out[i] = fillSchema(s["items"], fmt.Sprintf("%s[%d]", name, i), input, seed, depth+1)
		}
		return out
	case "integer":
		return clampNumber(s, float64(x%1000+1))
	case "number":
		return clampNumber(s, float64(x%100000)/100)
	case "boolean":
		return x%2 == 0
	case "null":
		return nil
	}
	switch s["format"] {
	case "date":
		return fmt.Sprintf("20%02d-%02d-%02d", 10+x%16, 1+x/16%12, 1+x/192%28)
	case "date-time":
		return fmt.Sprintf("20%02d-%02d-%02dT%02d:%02d:00Z", 10+x%16, 1+x/16%12, 1+x/192%28, x/5376%24, x/129024%60)
	}
	return fmt.Sprintf("%s of %s", name, input)
}

// schemaType returns the node's type: its "type", or the first non-null
// one of a list, or "object" when it has properties, else "string".
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, v := range t {
			if v, ok := v.(string); ok && v != "null" {
				return v
			}
		}
		return "null"
	}
	if _, ok := s["properties"]; ok {
		return "object"
	}
	return "string"
}

func clampNumber(s map[string]any, v float64) float64 {
	if m, ok := s["minimum"].(float64); ok && v < m {
		v = m
	}
	if m, ok := s["maximum"].(float64); ok && v > m {
		v = m
	}
	return v
}

func hashString(s string) uint64 {
	h := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(h[:8])
}
