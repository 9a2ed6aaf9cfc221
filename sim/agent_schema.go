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
// name, clamped to "minimum"/"maximum"; a boolean likewise; an array has
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
