package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// applyConfig reads the YAML job file at path and sets every flag it names
// that was not given on the command line. Keys are flag names, with dashes
// or underscores; ${VAR} in a value expands from the environment. A list
// becomes a comma-separated value; a mapping (response_format) becomes JSON.
func applyConfig(fs *flag.FlagSet, path string, getenv func(string) string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s:%d: want a mapping of flag names to values", path, root.Line)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[canonicalFlag(f.Name)] = true })
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			errs = append(errs, fmt.Errorf("config %s:%d: unknown key %q", path, k.Line, k.Value))
			continue
		}
		if given[canonicalFlag(name)] {
			continue // the command line, under this name or an alias, wins
		}
		val, err := nodeValue(v, getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s:%d: key %s: %w", path, v.Line, k.Value, err))
			continue
		}
		if err := fs.Set(name, val); err != nil {
			errs = append(errs, fmt.Errorf("config %s:%d: key %s: invalid value %q: %w", path, v.Line, k.Value, val, unwrapFlagErr(err)))
		}
	}
	return errors.Join(errs...)
}

func nodeValue(n *yaml.Node, getenv func(string) string) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return expand(n.Value, getenv), nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a list of plain values")
			}
			items = append(items, expand(c.Value, getenv))
		}
		return strings.Join(items, ","), nil
	case yaml.MappingNode:
		b, err := appendYAMLAsJSON(nil, n, 0)
		if err != nil {
			return "", err
		}
		return expand(string(b), getenv), nil
	default:
		return "", fmt.Errorf("unsupported value")
	}
}

// appendYAMLAsJSON appends the JSON form of n to b, keeping the order of
// every mapping's keys: the order of a schema's properties is the order of
// the CSV columns and the Parquet fields.
func appendYAMLAsJSON(b []byte, n *yaml.Node, depth int) ([]byte, error) {
	if depth > 100 {
		return b, fmt.Errorf("nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return b, fmt.Errorf("line %d: want one value", n.Line)
		}
		return appendYAMLAsJSON(b, n.Content[0], depth+1)
	case yaml.AliasNode:
		return appendYAMLAsJSON(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b = append(b, '{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return b, fmt.Errorf("line %d: a key must be a plain value", k.Line)
			}
			if k.Tag == "!!merge" {
				return b, fmt.Errorf("line %d: merge keys (<<) are not supported here", k.Line)
			}
			if seen[k.Value] {
				return b, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b = append(b, ',')
			}
			key, err := json.Marshal(k.Value)
			if err != nil {
				return b, err
			}
			b = append(append(b, key...), ':')
			if b, err = appendYAMLAsJSON(b, v, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, c := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendYAMLAsJSON(b, c, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return b, err
		}
		j, err := json.Marshal(v)
		if err != nil {
			return b, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return append(b, j...), nil
	}
	return b, fmt.Errorf("line %d: unsupported value", n.Line)
}

// expand replaces ${VAR} with the value of the environment variable VAR.
// Only the braced form is expanded, so a literal $ in a template survives.
func expand(s string, getenv func(string) string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(getenv(s[i+2 : i+j]))
		s = s[i+j+1:]
	}
}

// canonicalFlag returns the flag that an alias stands for, and any other
// name as it is.
func canonicalFlag(name string) string {
	switch name {
	case "instructions":
		return "system"
	case "search-domains":
		return "search-domain-filter"
	case "search-recency":
		return "search-recency-filter"
	}
	return name
}

// unwrapFlagErr drops the flag package's own wording where it repeats the
// value.
func unwrapFlagErr(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
