package pplx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
)

// The stream fixture testdata/agent/stream_fast.sse is the event sequence
// of vercel/ai's live capture of preset fast
// (2026-09-25), with its trimmed ids and payloads filled in: response.created
// and .in_progress with model "fast", the internal search_web
// function_call at output index 0 that the search_results item replaces
// without a .done event, a message announced with "content": null, text
// deltas, output_text.done, output_item.done and response.completed with
// the real model and usage, and gaps in sequence_number.
const (
	captureText  = "The official TypeScript website is **typescriptlang.org**; it hosts the handbook, the playground and downloads.[7]"
	captureID    = "resp_5619e0d2-4c1b-4b8a-a0f3-7d2c9e1b6a48"
	captureMsgID = "msg_0469b2d1-8e3f-4a7c-b5d6-e9f0a1b2c3d4"
)

// captureEvents returns the data of each event of the stream fixture.
func captureEvents(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/agent/stream_fast.sse")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if d, ok := strings.CutPrefix(l, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// typeOf returns the type of event data.
func typeOf(data string) string {
	var h struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal([]byte(data), &h)
	return h.Type
}

// sseOf frames event data as a stream.
func sseOf(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("data: " + e + "\n\n")
	}
	return b.String()
}

// keep returns the events for which f is true.
func keep(evs []string, f func(typ, data string) bool) []string {
	var out []string
	for _, e := range evs {
		if f(typeOf(e), e) {
			out = append(out, e)
		}
	}
	return out
}

// drop returns the events whose type is none of types.
func drop(evs []string, types ...string) []string {
	return keep(evs, func(typ, _ string) bool {
		for _, x := range types {
			if typ == x {
				return false
			}
		}
		return true
	})
}

// edit decodes an event, changes it with f, and encodes it again.
func edit(t testing.TB, data string, f func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// editLast edits the last event (the terminal one).
func editLast(t testing.TB, evs []string, f func(m map[string]any)) []string {
	out := append([]string(nil), evs...)
	out[len(out)-1] = edit(t, out[len(out)-1], f)
	return out
}

// response returns the "response" object of an event being edited.
func response(m map[string]any) map[string]any { return m["response"].(map[string]any) }

func TestAgentStream(t *testing.T) {
	evs := captureEvents(t)
	noOutput := func(m map[string]any) { response(m)["output"] = []any{} }
	created, last := evs[0], evs[len(evs)-1]
	textNoText := func(m map[string]any) {
		msg := response(m)["output"].([]any)[1].(map[string]any)
		msg["content"].([]any)[0].(map[string]any)["text"] = ""
	}
	msgContentNull := func(m map[string]any) {
		response(m)["output"].([]any)[1].(map[string]any)["content"] = nil
	}
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	withEventLines := func(evs []string) string {
		var b strings.Builder
		b.WriteString(": connected\n\n")
		for _, e := range evs {
			b.WriteString("event: " + typeOf(e) + "\ndata: " + e + "\n\n:\n\n")
		}
		return b.String()
	}
	type want struct {
		status, text, model, errCode, errMsg string
		items, sources                       int
		cost                                 float64
	}
	full := want{status: StatusCompleted, text: captureText, model: "openai/gpt-6-luna", items: 2, sources: 3, cost: 0.00111}
	fromStream := want{status: StatusCompleted, text: captureText, model: "openai/gpt-6-luna", items: 2, sources: 3, cost: 0.00111}
	tests := []struct {
		name string
		in   string
		want want
	}{
		{"capture", sseOf(evs...), full},
		{"capture with event lines, comments and [DONE] after the end", withEventLines(evs) + "data: [DONE]\n\n", full},
		{"capture with CRLF", crlf(sseOf(evs...)), full},
		{"capture with unknown events and garbage lines", sseOf(append([]string{
			`{"type":"response.skill.loaded","sequence_number":2,"name":"x"}`,
			`{"type":"response.unknown","sequence_number":2}`,
			`{"type":"response.reasoning.started","thought":null}`,
			`not json at all`,
			`{"type":"response.output_text.delta","delta":{"odd":true}}`,
		}, evs...)...), full},
		{"deltas only", sseOf(editLast(t, drop(evs, EventOutputTextDone, EventOutputItemDone), noOutput)...),
			want{status: StatusCompleted, text: captureText, model: "openai/gpt-6-luna", items: 1, cost: 0.00111}},
		{"deltas and a terminal message without text", sseOf(editLast(t, evs, textNoText)...), full},
		{"deltas and a terminal message with null content", sseOf(editLast(t, evs, msgContentNull)...), full},
		{"output_text.done only", sseOf(editLast(t, drop(evs, EventOutputTextDelta, EventOutputItemDone), noOutput)...),
			want{status: StatusCompleted, text: captureText, model: "openai/gpt-6-luna", items: 1, cost: 0.00111}},
		{"output_item.done only", sseOf(editLast(t, drop(evs, EventOutputTextDelta, EventOutputTextDone), noOutput)...), fromStream},
		{"terminal response only", sseOf(created, last), full},
		{"terminal event only", sseOf(last), full},
		{"terminal without response", sseOf(editLast(t, evs, func(m map[string]any) { m["response"] = nil })...),
			want{status: StatusCompleted, text: captureText, model: "fast", items: 2, sources: 3}},
		{"deltas without item ids or announcements", sseOf(created,
			`{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"Hel"}`,
			`{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"lo"}`,
			`{"type":"response.output_text.delta","output_index":0,"content_index":1,"delta":"!"}`,
			`{"type":"response.completed"}`),
			want{status: StatusCompleted, text: "Hello!", model: "fast", items: 1}},
		{"null fields", sseOf(
			`{"type":"response.created","sequence_number":null,"response":{"id":"resp_n","status":null,"model":null,"output":null,"usage":null,"error":null}}`,
			`{"type":"response.output_item.added","output_index":null,"item":{"type":"message","id":"msg_n","content":null,"role":null}}`,
			`{"type":"response.output_text.delta","item_id":"msg_n","output_index":null,"content_index":null,"delta":"a"}`,
			`{"type":"response.output_text.delta","item_id":"msg_n","delta":null}`,
			`{"type":"response.output_item.done","output_index":0,"item":null}`,
			`{"type":"response.completed","response":{"id":"resp_n","status":"completed","output":[{"type":"message","id":"msg_n","content":[{"type":"output_text","text":null,"annotations":null}]},{"type":"search_results","queries":null,"results":[{"id":null,"url":"https://n.example","title":null}]},null],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2,"cost":null}}}`),
			want{status: StatusCompleted, text: "a", items: 3, sources: 1}},
		{"incomplete with empty output", sseOf(created, `{"type":"response.incomplete","sequence_number":5,"response":{"id":"`+captureID+`","status":"incomplete","model":"openai/gpt-6-luna","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":{"input_tokens":1213,"output_tokens":16,"total_tokens":1229,"cost":{"total_cost":0.00013}}}}`),
			want{status: StatusIncomplete, model: "openai/gpt-6-luna", cost: 0.00013}},
		{"incomplete keeps the partial text", sseOf(append(keep(evs, func(typ, _ string) bool {
			return typ != EventCompleted && typ != EventOutputTextDone && typ != EventOutputItemDone
		}),
			`{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}}`)...),
			want{status: StatusIncomplete, text: captureText, model: "fast", items: 1}},
		{"failed with an error only", sseOf(created, `{"type":"response.failed","sequence_number":9,"error":{"code":"internal_error","message":"upstream failed","type":"server_error"}}`),
			want{status: StatusFailed, model: "fast", errCode: "internal_error", errMsg: "upstream failed"}},
		{"failed with a response", sseOf(created, `{"type":"response.failed","response":{"id":"`+captureID+`","status":"failed","error":{"code":"upstream_structured_output_failed","message":"no valid json"}}}`),
			want{status: StatusFailed, model: "fast", errCode: "upstream_structured_output_failed", errMsg: "no valid json"}},
		{"cancelled", sseOf(created, `{"type":"response.cancelled","sequence_number":3}`),
			want{status: StatusCancelled, model: "fast"}},
		{"error event", sseOf(created, `{"type":"error","sequence_number":4,"error":{"code":null,"message":"overloaded","type":"server_error"}}`),
			want{status: StatusFailed, model: "fast", errMsg: "overloaded"}},
		{"bare error event", sseOf(created, `{"type":"error","message":"rate limited","code":429}`),
			want{status: StatusFailed, model: "fast", errCode: "429", errMsg: "rate limited"}},
		{"error object without a type", sseOf(created, `{"error":{"code":400,"message":"bad schema"}}`),
			want{status: StatusFailed, model: "fast", errCode: "400", errMsg: "bad schema"}},
		{"event: error with text data", sseOf(created) + "event: error\ndata: upstream exploded\n\n",
			want{status: StatusFailed, model: "fast", errMsg: "upstream exploded"}},
		{"events after the terminal one are not read", sseOf(created, `{"type":"response.cancelled"}`, `{"type":"response.completed"}`) + "data: {broken",
			want{status: StatusCancelled, model: "fast"}},
		{"several search_results batches with continuing ids", sseOf(created,
			`{"type":"response.output_item.done","output_index":0,"item":{"type":"search_results","results":[{"id":1,"url":"https://a.example"},{"id":2,"url":"https://b.example"}]}}`,
			`{"type":"response.output_item.done","output_index":1,"item":{"type":"fetch_url_results","contents":[{"url":"https://b.example"}]}}`,
			`{"type":"response.output_item.done","output_index":2,"item":{"type":"search_results","results":[{"id":4,"url":"https://d.example"},{"id":3,"url":"https://c.example"}]}}`,
			`{"type":"response.output_text.delta","output_index":3,"item_id":"m","delta":"x[4]"}`,
			`{"type":"response.completed","response":{"status":"completed","output":[]}}`),
			want{status: StatusCompleted, text: "x[4]", model: "fast", items: 4, sources: 4}},
	}
	c := New("http://127.0.0.1", "k", Options{})
	for _, tc := range tests {
		for rname, r := range readers(tc.in) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := c.readAgentStream(t.Context(), streamResponse(r))
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				w := tc.want
				if got.Status != w.status || got.Text() != w.text || got.Model != w.model {
					t.Errorf("got status %q, model %q, text %q\nwant %q, %q, %q", got.Status, got.Model, got.Text(), w.status, w.model, w.text)
				}
				if len(got.Output) != w.items || len(got.Sources()) != w.sources {
					t.Errorf("got %d items and %d sources, want %d and %d: %+v", len(got.Output), len(got.Sources()), w.items, w.sources, got.Output)
				}
				var cost float64
				if got.Usage != nil && got.Usage.Cost != nil {
					cost = got.Usage.Cost.TotalCost
				}
				if cost != w.cost {
					t.Errorf("got cost %v, want %v", cost, w.cost)
				}
				var code, msg string
				if got.Error != nil {
					code, msg = string(got.Error.Code), got.Error.Message
				}
				if code != w.errCode || msg != w.errMsg {
					t.Errorf("got error %q %q, want %q %q", code, msg, w.errCode, w.errMsg)
				}
				if strings.Count(got.Text(), "typescriptlang") > 1 {
					t.Errorf("text doubled: %q", got.Text())
				}
			})
		}
	}
}

func TestAgentStreamCapture(t *testing.T) {
	// The assembled capture: the search_web function_call is gone, the
	// message has its text once, id and usage come through.
	c := New("http://127.0.0.1", "k", Options{})
	b, _ := os.ReadFile("testdata/agent/stream_fast.sse")
	got, err := c.readAgentStream(t.Context(), streamResponse(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != captureID || got.Usage == nil || got.Usage.InputTokens != 2841 || got.Usage.Cost.ToolCallsCostDetails["search_web"] != 0.001 {
		t.Errorf("got id %q usage %+v", got.ID, got.Usage)
	}
	var types []string
	for _, it := range got.Output {
		types = append(types, it.Type)
	}
	if strings.Join(types, ",") != "search_results,message" || got.Output[1].ID != captureMsgID {
		t.Errorf("got output %v", types)
	}
	if cites := strings.Join(got.Citations(), " "); cites != "https://en.wikipedia.org/wiki/TypeScript https://github.com/microsoft/TypeScript https://www.typescriptlang.org/" {
		t.Errorf("got citations %s", cites)
	}
}

func TestAgentStreamBuiltMarshal(t *testing.T) {
	// An item whose text came from the stream is written back with that
	// text, not as the raw item received.
	evs := captureEvents(t)
	in := sseOf(editLast(t, evs, func(m map[string]any) {
		response(m)["output"].([]any)[1].(map[string]any)["content"] = nil
	})...)
	c := New("http://127.0.0.1", "k", Options{})
	got, err := c.readAgentStream(t.Context(), streamResponse(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back AgentResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Text() != captureText {
		t.Errorf("round trip text %q, want %q", back.Text(), captureText)
	}
}

func TestAgentStreamErrors(t *testing.T) {
	const key = "pplx-SECRETKEY123"
	c := New("http://127.0.0.1", key, Options{})
	evs := captureEvents(t)
	half := sseOf(evs[:12]...)
	tests := []struct {
		name      string
		r         io.Reader
		check     func(t *testing.T, got *AgentResponse, err error)
		retryable bool
	}{
		{"clean eof before the terminal event", strings.NewReader(half), func(t *testing.T, got *AgentResponse, err error) {
			var se *StreamError
			if !errors.As(err, &se) || se.Events != 12 || se.Err != nil {
				t.Errorf("got %#v, want a *StreamError after 12 events with no cause", err)
			}
			if got.ID != captureID {
				t.Errorf("partial response has id %q, want %q", got.ID, captureID)
			}
		}, true},
		{"cut mid event", strings.NewReader(half + `data: {"type":"response.output_text.delta","del`), func(t *testing.T, _ *AgentResponse, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrTruncatedStream) {
				t.Errorf("got %v, want it to wrap io.ErrUnexpectedEOF and ErrTruncatedStream", err)
			}
		}, true},
		{"connection reset", io.MultiReader(strings.NewReader(half), iotest.ErrReader(syscall.ECONNRESET)), func(t *testing.T, _ *AgentResponse, err error) {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("got %v, want it to wrap ECONNRESET", err)
			}
		}, true},
		{"[DONE] before the terminal event", strings.NewReader(half + "data: [DONE]\n\n" + sseOf(evs[12:]...)), func(t *testing.T, _ *AgentResponse, err error) {
			if !errors.Is(err, ErrTruncatedStream) || !errors.Is(err, errDoneFrame) {
				t.Errorf("got %v, want a truncated stream", err)
			}
		}, true},
		{"terminal event that does not decode", strings.NewReader(half + `data: {"type":"response.completed","response":{"output":"` + key + `"}}` + "\n\n"), func(t *testing.T, _ *AgentResponse, err error) {
			var de *DecodeError
			if !errors.As(err, &de) || strings.Contains(de.Snippet, key) {
				t.Errorf("got %#v, want a *DecodeError without the key", err)
			}
		}, true},
		{"event too large", io.MultiReader(strings.NewReader("data: "), repeatReader{'x'}), func(t *testing.T, _ *AgentResponse, err error) {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("got %v, want it to wrap ErrTooLarge", err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.readAgentStream(t.Context(), streamResponse(tc.r))
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if got == nil {
				t.Fatal("got no partial response")
			}
			tc.check(t, got, err)
			if Retryable(err) != tc.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, !tc.retryable, tc.retryable)
			}
			if strings.ContainsAny(err.Error(), "\r\n") || strings.Contains(err.Error(), key) {
				t.Errorf("bad error text %q", err.Error())
			}
		})
	}
}

// FuzzAgentStream feeds raw bytes to the Agent API stream reader, whole
// and one byte at a time. It must not panic, must give the same result
// both ways, must end with a terminal status exactly when it reports no
// error, and its errors must be one line of the documented types.
func FuzzAgentStream(f *testing.F) {
	f.Add([]byte(sseOf(`{"type":"response.output_text.delta","delta":"a"}`, `{"type":"response.completed"}`)))
	c := New("http://127.0.0.1", "k", Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		type outcome struct {
			Resp *AgentResponse
			Text string
			Err  string
		}
		run := func(r io.Reader) (outcome, error) {
			got, err := c.readAgentStream(t.Context(), streamResponse(r))
			o := outcome{Resp: got, Text: got.Text()}
			_ = got.Sources()
			if err != nil {
				o.Err = err.Error()
			}
			return o, err
		}
		whole, err := run(bytes.NewReader(data))
		if err == nil && !TerminalStatus(whole.Resp.Status) {
			t.Fatalf("no error but status %q", whole.Resp.Status)
		}
		if err != nil {
			var se *StreamError
			var de *DecodeError
			if !errors.As(err, &se) && !errors.As(err, &de) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error not one line: %q", err.Error())
			}
		}
		bytewise, _ := run(iotest.OneByteReader(bytes.NewReader(data)))
		a, _ := json.Marshal(whole)
		b, _ := json.Marshal(bytewise)
		if !bytes.Equal(a, b) {
			t.Fatalf("whole and byte-wise reads differ:\n%s\n%s", a, b)
		}
	})
}
