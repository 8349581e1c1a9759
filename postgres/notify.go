package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
)

// A notification announces the events of one batch, in commit order, as a JSON array with one
// array per event: [order_id, seq, status, at (unix µs), note, actor, kind, courier_id, marks,
// courier_name], the trailing empty ones left off (each field after marks was added at the end,
// so that a node of an earlier version reads what it knows). An event too large to fit is
// announced as [order_id, seq] (or [order_id, seq, marks]: the store's rows do not say them) and
// read from the store by the listener; that short form always fits (MinNotifyPayload). A batch
// whose events do not fit in one payload is announced in several, in order; PostgreSQL delivers
// one transaction's notifications in the order they were sent.

// notifyPayloads encodes a batch's events into as few payloads of at most max bytes as they fit.
func notifyPayloads(evs []ordercast.Event, max int) ([]string, error) {
	p := jsonArrays(max)
	for _, ev := range evs {
		row := []any{ev.OrderID, ev.Seq, ev.Status, ev.At.UnixMicro()}
		optional := []string{ev.Note, ev.Actor, string(ev.Kind), ev.CourierID, string(ev.Marks), ev.CourierName}
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
		if !p.fits(len(enc)) {
			if enc, err = shortNotice(ev); err != nil {
				return nil, err
			}
		}
		p.add(enc)
	}
	return p.done(), nil
}

// shortNotice is an event's notice by order id, seq and marks only, for one too large to
// announce whole: the listener reads the rest from the store.
func shortNotice(ev ordercast.Event) ([]byte, error) {
	short := []any{ev.OrderID, ev.Seq}
	if ev.Marks != "" {
		short = append(short, ev.Marks)
	}
	enc, err := json.Marshal(short)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode notice %s/%d: %w", ev.OrderID, ev.Seq, err)
	}
	return enc, nil
}

// noticePacker packs encoded items into as few notices of at most max bytes as they fit, in
// order: each notice is open, its items joined by sep, then close. An item must fit alone (fits).
type noticePacker struct {
	open, sep, close string
	max              int
	payloads         []string
	b                strings.Builder
}

// jsonArrays packs JSON values into JSON arrays.
func jsonArrays(max int) *noticePacker {
	return &noticePacker{open: "[", sep: ",", close: "]", max: max}
}

// fits reports whether an item of n bytes fits a notice alone.
func (p *noticePacker) fits(n int) bool { return len(p.open)+n+len(p.close) <= p.max }

// addPosition adds one encoded position of order orderID; one too large for a notice even alone
// is an error (a position has no shorter form to fall back on, as an event has).
func (p *noticePacker) addPosition(enc []byte, orderID string) error {
	if !p.fits(len(enc)) {
		return fmt.Errorf("position of order %.40q is %d bytes, over a notice's %d", orderID, len(enc), p.max)
	}
	p.add(enc)
	return nil
}

func (p *noticePacker) add(enc []byte) {
	if p.b.Len() > 0 && p.b.Len()+len(p.sep)+len(enc)+len(p.close) > p.max {
		p.flush()
	}
	if p.b.Len() == 0 {
		p.b.WriteString(p.open)
	} else {
		p.b.WriteString(p.sep)
	}
	p.b.Write(enc)
}

func (p *noticePacker) flush() {
	p.b.WriteString(p.close)
	p.payloads = append(p.payloads, p.b.String())
	p.b.Reset()
}

// done returns the notices.
func (p *noticePacker) done() []string {
	if p.b.Len() > 0 {
		p.flush()
	}
	return p.payloads
}

// parseNotification returns the events a notification announces, in commit order. An event
// announced by order id and seq only has no Status: the receiver reads it from the store. The
// one-event object of earlier versions ({"order_id":…,"seq":…,…}) is still understood, so nodes
// of both versions can share a database during a rolling upgrade.
//
// Every node reads every batch of the cluster, so the arrays notifyPayloads writes are read by
// hand (readNotices, about a tenth of encoding/json's time); anything else, the other forms this
// version accepts and every malformed notice among them, goes to encoding/json as before.
func parseNotification(payload string) ([]ordercast.Event, error) {
	if evs, ok := readNotices(payload); ok {
		for _, ev := range evs {
			if err := validNotice(ev); err != nil {
				return nil, err
			}
		}
		return evs, nil
	}
	return parseNotificationJSON(payload)
}

// parseNotificationJSON is parseNotification with encoding/json, for every form it accepts.
func parseNotificationJSON(payload string) ([]ordercast.Event, error) {
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
		fields := []any{&ev.OrderID, &ev.Seq, &ev.Status, &at, &ev.Note, &ev.Actor, &ev.Kind, &ev.CourierID, &ev.Marks, &ev.CourierName}
		if len(row) == 3 { // [order_id, seq, marks]: read from the store
			fields = []any{&ev.OrderID, &ev.Seq, &ev.Marks}
		}
		if len(row) < 2 {
			return nil, fmt.Errorf("notice %d has %d fields", i, len(row))
		}
		// A row longer than this version knows carries fields a later version added after
		// these: a node mid-way through a rolling upgrade reads what it knows and leaves the
		// rest, rather than take every such notice for a broken one (and reconnect on it).
		for j, raw := range row[:min(len(row), len(fields))] {
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

// OrdersChannel is the NOTIFY channel that carries the orders each batch created, as they stood
// at its commit, so that every node knows them (see known.go) and judges their later changes,
// wherever they land, without reading them. Nodes that do not listen to it lose nothing: what it
// carries can always be read.
const OrdersChannel = "ordercast_orders"

// orderNotice is one created order in a notice on OrdersChannel, with its latest event. Details
// travel as a string, the text the store keeps byte for byte: as a JSON value they would come
// back compacted.
type orderNotice struct {
	ordercast.Order
	Details string          `json:"details"`
	Latest  ordercast.Event `json:"latest"`
}

// orderPayloads encodes the orders b created, each with its latest event, into JSON arrays of at
// most max bytes. An order too large to fit alone is left out: the nodes read it when they need it.
func orderPayloads(b *ordercast.Batch, max int) ([]string, error) {
	if len(b.Created) == 0 {
		return nil, nil
	}
	latest := make(map[string]ordercast.Event, len(b.Created))
	for _, ev := range b.Events {
		latest[ev.OrderID] = ev.Wire()
	}
	p := jsonArrays(max)
	for _, o := range b.Created {
		enc, err := json.Marshal(orderNotice{Order: o, Details: string(o.Details), Latest: latest[o.ID]})
		if err != nil {
			return nil, fmt.Errorf("postgres: encode created order %s: %w", o.ID, err)
		}
		if p.fits(len(enc)) {
			p.add(enc)
		}
	}
	return p.done(), nil
}

// parseOrders returns the orders a notice on OrdersChannel carries, each with its latest event.
func parseOrders(payload string) ([]ordercast.Order, []ordercast.Event, error) {
	var ns []orderNotice
	if err := json.Unmarshal([]byte(payload), &ns); err != nil {
		return nil, nil, err
	}
	orders, latest := make([]ordercast.Order, len(ns)), make([]ordercast.Event, len(ns))
	for i, n := range ns {
		if n.ID == "" || n.Version < 1 || n.Latest.OrderID != n.ID || n.Latest.Seq != n.Version {
			return nil, nil, fmt.Errorf("created order %d: no id, or its latest event is not at its version", i)
		}
		orders[i], latest[i] = n.Order, n.Latest
		orders[i].Details = json.RawMessage(n.Details)
	}
	return orders, latest, nil
}
