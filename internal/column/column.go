// Package column is how both stores keep the domain's values that are not plain SQL types in
// their columns, and read them back: one encoding, so that a file or database written by one
// release and read by another, or a row copied between the stores, means the same.
package column

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ordercast/ordercast"
)

// Point is how an optional point is kept: its JSON, or nil (SQL NULL) for none.
func Point(p *ordercast.Point) any {
	if p == nil {
		return nil
	}
	b, _ := json.Marshal(p) // two finite floats: encoding cannot fail
	return string(b)
}

// ParsePoint reads what Point wrote; nil or empty is no point.
func ParsePoint(s *string) (*ordercast.Point, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	var p ordercast.Point
	if err := json.Unmarshal([]byte(*s), &p); err != nil {
		return nil, fmt.Errorf("decode point %q: %w", *s, err)
	}
	return &p, nil
}

// Details returns stored details as they may be served: a row written before details were
// checked as served (an older PostgreSQL rendering) that is not a JSON object within
// ordercast.MaxDetailsBytes is served as {} rather than let one order make every read huge.
func Details(stored []byte) json.RawMessage {
	if len(stored) > ordercast.MaxDetailsBytes || !json.Valid(stored) {
		return json.RawMessage("{}")
	}
	return stored
}

// Of names each column of columns, a comma-separated list as a store's SELECT lists them, as a
// column of table alias, for a join: Of("o", "id, status") is "o.id, o.status". The stores write
// their order's columns once, and read them the same way alone and joined to its events.
func Of(alias, columns string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}
