package openapi

import (
	"strings"
	"testing"
)

const doc = `{
  "openapi": "3.1.0",
  "paths": {"/v1/things/{id}": {"get": {"operationId": "getThing", "responses": {"200": {"description": "ok",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}}}},
  "components": {"schemas": {
    "Base": {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}}, "required": ["id"]},
    "Thing": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object", "properties": {
      "size": {"type": "integer", "minimum": 1},
      "angle": {"type": "number", "exclusiveMaximum": 360},
      "kind": {"type": "string", "enum": ["a", "b"]},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
      "dims": {"type": "object", "properties": {"w": {"type": "integer"}}, "additionalProperties": false},
      "extra": {"type": "object"}}}]}
  }}
}`

// TestCheck: what the check takes and what it refuses, one rule at a time.
func TestCheck(t *testing.T) {
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ops := d.Operations(); len(ops) != 1 || ops[0] != "GET /v1/things/{id}" || d.OperationID(ops[0]) != "getThing" {
		t.Fatalf("operations %v", ops)
	}
	schema, err := d.Response("GET /v1/things/{id}", 200, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		value, wrong string // wrong: what the error must say, "" when the value holds
	}{
		{`{"id":"a","size":2,"kind":"b","tags":["x"],"extra":{"anything":[1]}}`, ""},
		{`{"id":"a","colour":"red"}`, `property "colour" is not in the description`},
		{`{"size":2}`, `required property "id" is missing`},
		{`{"id":"A1"}`, `does not match`},
		{`{"id":"a","size":0}`, `under the minimum`},
		{`{"id":"a","size":1.5}`, `not of type integer`},
		{`{"id":"a","angle":359.9}`, ""},
		{`{"id":"a","angle":360}`, `not under the exclusive maximum 360`},
		{`{"id":"a","kind":"c"}`, `is none of`},
		{`{"id":"a","kind":{"x":1}}`, `not of type string`},
		{`{"id":"a","tags":["x","y","z"]}`, `over 2`},
		{`{"id":"a","tags":[1]}`, `$.tags[0]: 1 is not of type string`},
		{`{"id":"a","dims":{"w":1}}`, ""},
		{`{"id":"a","dims":{"w":1,"h":2}}`, `property "h" is not in the description`},
		{`[]`, `not of type object`},
	} {
		err := d.CheckJSON(schema, []byte(tt.value))
		switch {
		case tt.wrong == "" && err != nil:
			t.Errorf("%s: %v, want it taken", tt.value, err)
		case tt.wrong != "" && (err == nil || !strings.Contains(err.Error(), tt.wrong)):
			t.Errorf("%s: %v, want an error saying %q", tt.value, err, tt.wrong)
		}
	}
}

// TestParseRefuses: a description the check could not hold a value to as it means is refused
// whole: a reference to nothing, a keyword the check does not know or would pass over (beside a
// $ref, items in an allOf part), a property named twice, a pattern that does not compile,
// additionalProperties other than false (the check holds objects closed whatever it says) or in
// a part of an allOf (which JSON Schema would read as closing the whole to that part's
// properties), a cycle of references (which the check must not follow for ever).
func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct{ replace, with, wrong string }{
		{`"#/components/schemas/Base"`, `"#/components/schemas/Nothing"`, `no "Nothing"`},
		{`"maxItems": 2`, `"maxItems": 2, "uniqueItems": true`, `does not know the keyword "uniqueItems"`},
		{`"exclusiveMaximum": 360`, `"exclusiveMaximum": true`, `exclusiveMaximum must be a number`},
		{`"size": {`, `"id": {"type": "string"}, "size": {`, `property "id" is in allOf part 0 and allOf part 1`},
		{`"Thing": {"allOf"`, `"Thing": {"properties": {"size": {"type": "string"}}, "allOf"`, `property "size" is in its own properties and allOf part 1`},
		{`{"$ref": "#/components/schemas/Base"}, {`, `{"$ref": "#/components/schemas/Base", "maxLength": 2}, {`, `would pass "maxLength" beside it over`},
		{`"extra": {"type": "object"}}}]}`, `"extra": {"type": "object"}}}, {"type": "array", "items": {"type": "string"}}]}`, `allOf part 2 has items`},
		{`"required": ["id"]}`, `"required": ["id"], "additionalProperties": false}`, `additionalProperties in a part of an allOf`},
		{`"Thing": {"allOf"`, `"Thing": {"additionalProperties": false, "allOf"`, `additionalProperties beside allOf`},
		{`"^[a-z]+$"`, `"^[a-z+$"`, `pattern`},
		{`"additionalProperties": false`, `"additionalProperties": {"type": "string"}`, `additionalProperties may only be false`},
		{`"Base": {`, `"Loop": {"$ref": "#/components/schemas/Loop"}, "Base": {`, `leads round a cycle`},
	} {
		bad := strings.Replace(doc, tt.replace, tt.with, 1)
		if bad == doc {
			t.Fatalf("%q is not in the document", tt.replace)
		}
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), tt.wrong) {
			t.Errorf("with %s: %v, want an error saying %q", tt.with, err, tt.wrong)
		}
	}
}
