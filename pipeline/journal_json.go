package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/pplx-batch/pplx-batch/internal/jsonstr"
	"github.com/pplx-batch/pplx-batch/sink"
)

// appendResult appends the JSON form of r to b, as the journal stores it.
// It is written by hand for speed (encoding/json took a third of the
// journal's time, on the one goroutine that writes the rows): the bytes
// may differ from json.Marshal's (no HTML escaping), but they decode to
// the same Result, and it fails where json.Marshal fails (a raw field
// that is not JSON, a cost that is not a finite number).
// FuzzAppendResult holds it to that.
func appendResult(b []byte, r *Result) ([]byte, error) {
	row := &r.Row
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, row.ID)
	b = append(b, `,"row":`...)
	b = strconv.AppendInt(b, row.Row, 10)
	b = append(b, `,"status":`...)
	b = jsonstr.Append(b, row.Status)
	b = append(b, `,"error":`...)
	b = jsonstr.Append(b, row.Error)
	b = append(b, `,"input":`...)
	b, err := appendRaw(b, row.Input)
	if err != nil {
		return b, err
	}
	b = append(b, `,"http_status":`...)
	b = strconv.AppendInt(b, int64(row.HTTPStatus), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(row.Attempts), 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, row.LatencyMS, 10)
	b = append(b, `,"request_id":`...)
	b = jsonstr.Append(b, row.RequestID)

	b = append(b, `,"results":`...)
	if row.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range row.Results {
			s := &row.Results[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"title":`...)
			b = jsonstr.Append(b, s.Title)
			b = append(b, `,"url":`...)
			b = jsonstr.Append(b, s.URL)
			b = append(b, `,"snippet":`...)
			b = jsonstr.Append(b, s.Snippet)
			b = append(b, `,"date":`...)
			b = jsonstr.Append(b, s.Date)
			b = append(b, `,"last_updated":`...)
			b = jsonstr.Append(b, s.LastUpdated)
			b = append(b, '}')
		}
		b = append(b, ']')
	}

	b = append(b, `,"content":`...)
	b = jsonstr.Append(b, row.Content)
	b = append(b, `,"citations":`...)
	if row.Citations == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range row.Citations {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, c)
		}
		b = append(b, ']')
	}
	b = append(b, `,"search_results":`...)
	if row.SearchResults == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range row.SearchResults {
			s := &row.SearchResults[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, s.ID, 10)
			b = append(b, `,"title":`...)
			b = jsonstr.Append(b, s.Title)
			b = append(b, `,"url":`...)
			b = jsonstr.Append(b, s.URL)
			b = append(b, `,"date":`...)
			b = jsonstr.Append(b, s.Date)
			b = append(b, `,"snippet":`...)
			b = jsonstr.Append(b, s.Snippet)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"usage":`...)
	if b, err = appendUsage(b, row.Usage); err != nil {
		return b, err
	}
	b = append(b, `,"model":`...)
	b = jsonstr.Append(b, row.Model)
	b = append(b, `,"data":`...)
	if b, err = appendRaw(b, row.Data); err != nil {
		return b, err
	}
	if r.RequestHash != "" {
		b = append(b, `,"request_hash":`...)
		b = jsonstr.Append(b, r.RequestHash)
	}
	return append(b, '}'), nil
}

// appendUsage appends u, or null.
func appendUsage(b []byte, u *sink.Usage) ([]byte, error) {
	if u == nil {
		return append(b, "null"...), nil
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.PromptTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.CompletionTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, u.TotalTokens, 10)
	b = append(b, `,"cost_usd":`...)
	switch c := u.CostUSD; {
	case c == nil:
		b = append(b, "null"...)
	case math.IsNaN(*c) || math.IsInf(*c, 0):
		return b, errors.New("json: unsupported value: " + strconv.FormatFloat(*c, 'g', -1, 64))
	default:
		b = strconv.AppendFloat(b, *c, 'g', -1, 64)
	}
	return append(b, '}'), nil
}

// appendRaw appends raw JSON compacted, or null for none.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b, err
	}
	return buf.Bytes(), nil
}
