package pplx

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// errDoneFrame ends an Agent API stream that sent "data: [DONE]" before
// its terminal event.
var errDoneFrame = errors.New("[DONE] before the terminal event")

// readAgentStream reads an Agent API stream up to its terminal event and
// assembles it. After the terminal event it returns at once and finishes
// the body in the background (the server may hold the connection open);
// after an error it closes the body at once.
func (c *Client) readAgentStream(ctx context.Context, resp *http.Response) (*AgentResponse, error) {
	var a agentStream
	created := traceOf(ctx).RunCreated
	sr := NewSSEReader(resp.Body)
	for {
		if created != nil && a.snap != nil && a.snap.ID != "" {
			created(a.snap.ID)
			created = nil
		}
		ev, err := sr.Next()
		if err != nil {
			_ = resp.Body.Close()
			err = c.streamEnd(ctx, resp, "agent", a.events, err)
			if se, ok := errors.AsType[*StreamError](err); ok && a.snap != nil {
				se.RunID = a.snap.ID
			}
			return a.result(), err
		}
		end, err := a.feed(ev)
		if err != nil {
			_ = resp.Body.Close()
			return a.result(), c.decodeError(resp, ev.Data, err)
		}
		if a.doneFrame {
			_ = resp.Body.Close()
			return a.result(), &StreamError{Events: a.events, Err: errDoneFrame}
		}
		if end {
			go c.finish(resp.Body)
			return a.result(), nil
		}
	}
}

// agentStream assembles the events of an Agent API stream into one
// response. Its zero value is ready to use. It never fails: feed skips
// what it cannot use.
type agentStream struct {
	events    int            // events fed, keep-alives included
	snap      *AgentResponse // the last response.created or .in_progress snapshot
	final     *AgentResponse // the terminal event's response, if any
	terminal  string         // the terminal event's type, "" before it
	errInfo   *AgentError    // the terminal event's own error
	items     map[int]*streamItem
	ids       map[string]int // output index of each item id, the last one announced
	doneFrame bool           // a "data: [DONE]" line came before the terminal event
}

// streamItem is what the stream said about one output index.
type streamItem struct {
	added *OutputItem // from output_item.added
	done  *OutputItem // from output_item.done
	parts map[int]*streamPart
}

// streamPart is the text of one content part of a message item.
type streamPart struct {
	deltas strings.Builder // the output_text.delta values, in order
	done   string          // the output_text.done text
}

// feed decodes one server-sent event and adds it. It reports whether the
// event was the terminal one; err is set only for a terminal event that
// does not decode. Empty events, "[DONE]" and data that is not JSON are
// skipped ([DONE] sets doneFrame), except that an "event: error" frame
// whose data is not JSON ends the stream as an error event with the data
// as its message.
func (a *agentStream) feed(sse Event) (end bool, err error) {
	if a.terminal != "" {
		return true, nil
	}
	a.events++
	data := bytes.TrimSpace(sse.Data)
	if len(data) == 0 {
		return false, nil
	}
	if bytes.HasPrefix(data, []byte("[DONE]")) {
		a.doneFrame = true
		return false, nil
	}
	var ev AgentEvent
	if jerr := json.Unmarshal(data, &ev); jerr != nil {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &head) != nil {
			head.Type = ""
		}
		switch typ := cmp.Or(head.Type, sse.Type); {
		case typ == EventError:
			return a.add(&AgentEvent{Type: EventError, Message: oneLine(string(data), maxMessage)}), nil
		case TerminalEvent(typ):
			return false, fmt.Errorf("terminal event %s: %w", typ, jerr)
		}
		return false, nil
	}
	switch {
	case sse.Type == EventError && !TerminalEvent(ev.Type):
		// "event: error" wins over a data type that does not end the
		// stream.
		ev.Type = EventError
	case ev.Type == "" && ev.Error != nil:
		ev.Type = EventError
	case ev.Type == "":
		ev.Type = sse.Type
	}
	return a.add(&ev), nil
}

// add takes in one decoded event and reports whether it was terminal.
// Unknown event types are ignored.
func (a *agentStream) add(ev *AgentEvent) bool {
	if a.terminal != "" {
		return true
	}
	switch ev.Type {
	case EventCreated, EventInProgress:
		if ev.Response != nil {
			a.snap = ev.Response
		}
	case EventOutputItemAdded:
		if ev.Item != nil {
			st := a.item(ev.OutputIndex)
			if st.done != nil {
				// A new item at a used index: start over.
				*st = streamItem{}
			}
			st.added = ev.Item
			a.index(ev.Item.ID, ev.OutputIndex)
		}
	case EventOutputItemDone:
		if ev.Item != nil {
			a.item(ev.OutputIndex).done = ev.Item
			a.index(ev.Item.ID, ev.OutputIndex)
		}
	case EventOutputTextDelta:
		a.part(ev).deltas.WriteString(ev.Delta)
	case EventOutputTextDone:
		if ev.Text != "" {
			a.part(ev).done = ev.Text
		}
	case EventCompleted, EventIncomplete, EventFailed, EventCancelled, EventError:
		a.terminal = ev.Type
		a.final = ev.Response
		a.errInfo = ev.Error
		if a.errInfo == nil && (ev.Message != "" || ev.Code != "") {
			a.errInfo = &AgentError{Code: ev.Code, Message: ev.Message}
		}
		return true
	}
	return false
}

// item returns the state of output index i, creating it.
func (a *agentStream) item(i int) *streamItem {
	if a.items == nil {
		a.items = map[int]*streamItem{}
	}
	st := a.items[i]
	if st == nil {
		st = &streamItem{}
		a.items[i] = st
	}
	return st
}

// index records that the item with this id is at output index i.
func (a *agentStream) index(id string, i int) {
	if id == "" {
		return
	}
	if a.ids == nil {
		a.ids = map[string]int{}
	}
	a.ids[id] = i
}

// byID returns the streamed item with this id, nil if none.
func (a *agentStream) byID(id string) *streamItem {
	if id == "" {
		return nil
	}
	i, ok := a.ids[id]
	if !ok {
		return nil
	}
	if st := a.items[i]; st != nil && st.id() == id {
		return st
	}
	return nil
}

// part returns the text state of a text event's content part. The part's
// item is found by item_id when an item with that id was announced, else
// by output_index.
func (a *agentStream) part(ev *AgentEvent) *streamPart {
	idx := ev.OutputIndex
	if i, ok := a.ids[ev.ItemID]; ok && a.byID(ev.ItemID) != nil {
		idx = i
	}
	st := a.item(idx)
	if st.parts == nil {
		st.parts = map[int]*streamPart{}
	}
	p := st.parts[ev.ContentIndex]
	if p == nil {
		p = &streamPart{}
		st.parts[ev.ContentIndex] = p
	}
	return p
}

// id returns the id of the item at this index, "" if it has none.
func (st *streamItem) id() string {
	if st.done != nil && st.done.ID != "" {
		return st.done.ID
	}
	if st.added != nil {
		return st.added.ID
	}
	return ""
}

// text returns the text of content part k of the item, the first
// non-empty of: the output_item.done's part, output_text.done, the
// deltas.
func (st *streamItem) text(k int) string {
	if st.done != nil && k < len(st.done.Content) && st.done.Content[k].Text != "" {
		return st.done.Content[k].Text
	}
	if p := st.parts[k]; p != nil {
		return cmp.Or(p.done, p.deltas.String())
	}
	return ""
}

// isMessage reports whether the item at this index is a message, or has
// text parts and no type.
func (st *streamItem) isMessage() bool {
	switch {
	case st.done != nil:
		return st.done.Type == ItemMessage
	case st.added != nil:
		return st.added.Type == ItemMessage
	}
	return len(st.parts) > 0
}

// result returns the response assembled so far: the terminal response
// (else the last snapshot, else an empty response) with its output
// reconciled against the streamed items, and Status and Error set from
// the terminal event.
func (a *agentStream) result() *AgentResponse {
	var r AgentResponse
	switch {
	case a.final != nil:
		r = *a.final
	case a.snap != nil:
		r = *a.snap
	}
	if s := a.snap; s != nil {
		r.ID = cmp.Or(r.ID, s.ID)
		r.Object = cmp.Or(r.Object, s.Object)
		r.Model = cmp.Or(r.Model, s.Model)
		r.CreatedAt = cmp.Or(r.CreatedAt, s.CreatedAt)
		r.Background = r.Background || s.Background
	}
	switch a.terminal {
	case EventCompleted:
		r.Status = StatusCompleted
	case EventIncomplete:
		r.Status = StatusIncomplete
	case EventCancelled:
		r.Status = StatusCancelled
	case EventFailed, EventError:
		r.Status = StatusFailed
	}
	if a.errInfo != nil && (r.Error == nil || a.terminal == EventError) {
		e := *a.errInfo
		r.Error = &e
	}
	if a.final != nil && len(a.final.Output) > 0 {
		r.Output = a.reconcile(a.final.Output)
	} else if len(a.items) > 0 {
		r.Output = a.built()
	}
	return &r
}

// reconcile returns a copy of the terminal response's output in which
// message items without text take it from the stream (matched by id, else
// by output index).
func (a *agentStream) reconcile(out []OutputItem) []OutputItem {
	res := slices.Clone(out)
	for i := range res {
		it := &res[i]
		if it.Type != ItemMessage {
			continue
		}
		st := a.match(it.ID, i)
		if st == nil {
			continue
		}
		filled := fillText(it, st)
		if filled {
			it.Raw = nil
		}
	}
	return res
}

// match returns the streamed message item with this id, else the one at
// index i if it has no other id.
func (a *agentStream) match(id string, i int) *streamItem {
	if st := a.byID(id); st != nil {
		return st
	}
	if st := a.items[i]; st != nil && st.isMessage() && (id == "" || st.id() == "") {
		return st
	}
	return nil
}

// maxParts bounds the content index of a streamed text part that
// fillText builds a part for: a bogus index must not allocate much.
const maxParts = 1024

// fillText gives the output_text parts of message it that have no text
// the streamed text, and a message without content parts the streamed
// parts. It reports whether it changed it.
func fillText(it *OutputItem, st *streamItem) bool {
	if len(it.Content) == 0 {
		var parts []ContentPart
		if st.done != nil {
			parts = slices.Clone(st.done.Content)
		}
		for k := range st.parts {
			if k >= len(parts) && k < maxParts {
				parts = append(parts, make([]ContentPart, k+1-len(parts))...)
			}
		}
		for k := range parts {
			if parts[k].Type == "" {
				parts[k].Type = "output_text"
			}
			if parts[k].Type == "output_text" {
				parts[k].Text = st.text(k)
			}
		}
		it.Content = parts
		return len(parts) > 0
	}
	it.Content = slices.Clone(it.Content)
	changed := false
	for k := range it.Content {
		p := &it.Content[k]
		if p.Type == "output_text" && p.Text == "" {
			if t := st.text(k); t != "" {
				p.Text = t
				changed = true
			}
		}
	}
	return changed
}

// built returns the output rebuilt from the streamed items, in index
// order: each index's output_item.done item, else its added item when
// that is a message (an added item of another type that never got its
// done event, such as the API's internal search_web function_call, is
// left out), with message text filled from the text events.
func (a *agentStream) built() []OutputItem {
	var out []OutputItem
	for _, i := range slices.Sorted(maps.Keys(a.items)) {
		st := a.items[i]
		var it OutputItem
		switch {
		case st.done != nil:
			it = *st.done
		case st.added != nil && st.added.Type == ItemMessage:
			it = *st.added
		case st.added == nil && len(st.parts) > 0:
			it = OutputItem{Type: ItemMessage, Role: "assistant"}
		default:
			continue
		}
		if it.Type == ItemMessage && fillText(&it, st) {
			it.Raw = nil
		}
		out = append(out, it)
	}
	return out
}
