package ordercast_test

import (
	"encoding/json"
	"testing"

	"github.com/ordercast/ordercast"
)

func TestSameDetails(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b" : [1, 2], "a" : 1 }`, true},
		{`{"a":1}`, `{"a":1.0}`, true},
		{`{"a":100}`, `{"a":1e2}`, true},
		{`{"a":0.5}`, `{"a":5E-1}`, true},
		{`{"a":-0}`, `{"a":0.0}`, true},
		{`{"a":1}`, `{"a":-1}`, false},
		{`{"a":1}`, `{"a":10}`, false},
		{`{"a":1}`, `{"a":"1"}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":1e99999999999}`, `{"a":1e99999999999}`, true},
		{`{"a":1e99999999999}`, `{"a":2e99999999999}`, false},
		{`{"a":1}`, `not json`, false},
	}
	for _, tt := range tests {
		if got := ordercast.SameDetails(json.RawMessage(tt.a), json.RawMessage(tt.b)); got != tt.want {
			t.Errorf("SameDetails(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
