package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
)

// A notification announces the events of one batch, in commit order, as a JSON array with one
// array per event: [order_id, seq, status, at (unix µs), note, actor, kind, courier_id, marks],
// the trailing empty ones left off. An event too large to fit is announced as [order_id, seq] (or
// [order_id, seq, marks]: the store's rows do not say them) and read from the store by the
// listener. A batch whose events do not fit in one payload is announced in several, in
// order; PostgreSQL delivers one transaction's notifications in the order they were sent.

// notifyPayloads encodes a batch's events into as few payloads of at most max bytes as they fit.
func notifyPayloads(evs []ordercast.Event, max int) ([]string, error) {
	var (
		payloads []string
		b        strings.Builder
	)
	b.WriteByte('[')
	for _, ev := range evs {
		row := []any{ev.OrderID, ev.Seq, ev.Status, ev.At.UnixMicro()}
		optional := []string{ev.Note, ev.Actor, string(ev.Kind), ev.CourierID, string(ev.Marks)}
		for len(optional) > 0 && optional[len(optional)-1] == "" {
			optional = optional[:len(optional)-1]
		}
		for _, v := range optional {
			row = append(row, v)
		}
		enc, err := json.Marshal(row)
		if err != nil {
			return nil, fmt.Errorf("postgres: encode notice %s/%d: %w", ev.OrderID, ev.Seq, err)
		}
		if len(enc)+2 > max {
			short := []any{ev.OrderID, ev.Seq}
			if ev.Marks != "" {
				short = append(short, ev.Marks)
			}
			if enc, err = json.Marshal(short); err != nil {
				return nil, fmt.Errorf("postgres: encode notice %s/%d: %w", ev.OrderID, ev.Seq, err)
			}
		}
		if b.Len() > 1 && b.Len()+1+len(enc)+1 > max {
			b.WriteByte(']')
			payloads = append(payloads, b.String())
			b.Reset()
			b.WriteByte('[')
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(enc)
	}
	if b.Len() > 1 {
		b.WriteByte(']')
		payloads = append(payloads, b.String())
	}
	return payloads, nil
}

// parseNotification returns the events a notification announces, in commit order. An event
// announced by order id and seq only has no Status: the receiver reads it from the store. The
// one-event object of earlier versions ({"order_id":…,"seq":…,…}) is still understood, so nodes
// of both versions can share a database during a rolling upgrade.
func parseNotification(payload string) ([]ordercast.Event, error) {
	if strings.HasPrefix(payload, "{") {
		var ev ordercast.Event
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return nil, err
		}
		return []ordercast.Event{ev}, validNotice(ev)
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &rows); err != nil {
		return nil, err
	}
	evs := make([]ordercast.Event, len(rows))
	for i, row := range rows {
		ev := &evs[i]
		var at int64
		fields := []any{&ev.OrderID, &ev.Seq, &ev.Status, &at, &ev.Note, &ev.Actor, &ev.Kind, &ev.CourierID, &ev.Marks}
		if len(row) == 3 { // [order_id, seq, marks]: read from the store
			fields = []any{&ev.OrderID, &ev.Seq, &ev.Marks}
		}
		if len(row) < 2 || len(row) > len(fields) {
			return nil, fmt.Errorf("notice %d has %d fields", i, len(row))
		}
		for j, raw := range row {
			if err := json.Unmarshal(raw, fields[j]); err != nil {
				return nil, fmt.Errorf("notice %d field %d: %w", i, j, err)
			}
		}
		if len(row) > 3 {
			ev.At = time.UnixMicro(at).UTC()
		}
		if err := validNotice(*ev); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

func validNotice(ev ordercast.Event) error {
	if ev.OrderID == "" || ev.Seq < 1 {
		return fmt.Errorf("notice without order id or seq")
	}
	return nil
}
