// Package openapi reads the API's OpenAPI description (api/openapi.json) for the tests that keep
// it true: the operations it lists, and a check of a JSON value against one of its schemas.
//
// The check knows the part of JSON Schema the description uses ($ref, allOf, type, enum,
// properties, required, items, pattern, minimum/maximum/exclusiveMaximum, minLength/maxLength, minItems/maxItems;
// additionalProperties, false only, which says what the check does anyway; description, format
// and default say nothing it checks). Parse refuses a schema with any other
// keyword, or with one the check would pass over (beside a $ref, items in an allOf part, a
// property named twice), so that nothing in the description goes unchecked. The check is strict
// where the description is silent: an object may hold no property its schema (with the schemas
// of its allOf) does not name, so that a field the server sends and the description leaves out
// fails a test rather than surprise a generated client.
package openapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Document is a parsed OpenAPI description.
type Document struct {
	raw map[string]any
}

// Parse reads a description and checks that every $ref in it names something it holds, and that
// the check can hold a value to each of its schemas (schemaErrors).
func Parse(b []byte) (*Document, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	d := &Document{raw: raw}
	var errs []string
	walk(raw, func(ref string) {
		if _, err := d.resolve(ref); err != nil {
			errs = append(errs, err.Error())
		} else if d.deref(map[string]any{"$ref": ref}) == nil {
			errs = append(errs, fmt.Sprintf("reference %q leads round a cycle of references", ref))
		}
	})
	for _, name := range d.Schemas() {
		schema, _ := d.Schema(name)
		errs = append(errs, d.schemaErrors("#/components/schemas/"+name, schema)...)
	}
	walkSchemas(raw, func(at string, schema map[string]any) {
		errs = append(errs, d.schemaErrors(at, schema)...)
	}, "#")
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi: %s", strings.Join(errs, "; "))
	}
	return d, nil
}

// MustParse is Parse for a test, which it fails when the description does not parse.
func MustParse(t testing.TB, b []byte) *Document {
	t.Helper()
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// walk calls f with every $ref in v.
func walk(v any, f func(ref string)) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			f(ref)
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walk(v[k], f)
		}
	case []any:
		for _, e := range v {
			walk(e, f)
		}
	}
}

// walkSchemas calls f with every schema given under a "schema" key (of a parameter, a header, a
// body), at its place in the document.
func walkSchemas(v any, f func(at string, schema map[string]any), at string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if s, ok := v[k].(map[string]any); ok && k == "schema" {
				f(at+"/schema", s)
				continue
			}
			walkSchemas(v[k], f, at+"/"+k)
		}
	case []any:
		for i, e := range v {
			walkSchemas(e, f, at+"/"+strconv.Itoa(i))
		}
	}
}

// keywords are the keywords of a schema the check knows (see the package's comment).
var keywords = []string{"$ref", "allOf", "type", "enum", "properties", "required", "items", "pattern",
	"minimum", "maximum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "description", "format", "default",
	"additionalProperties"}

// schemaErrors reports what of a schema, and of the schemas inside it, the check would not
// check as the description means: a keyword it does not know, one beside a $ref (which the
// check follows, leaving the rest), a pattern that does not compile, items in a part of an allOf
// (the check reads the whole schema's), a property named twice, in the schema and a part of its
// allOf or in two parts (which of them holds?).
func (d *Document) schemaErrors(at string, schema map[string]any) []string {
	var errs []string
	_, isRef := schema["$ref"]
	for _, k := range slices.Sorted(maps.Keys(schema)) {
		switch {
		case !slices.Contains(keywords, k):
			errs = append(errs, fmt.Sprintf("%s: the check does not know the keyword %q", at, k))
		case isRef && k != "$ref" && k != "description":
			errs = append(errs, fmt.Sprintf("%s: the check follows $ref and would pass %q beside it over", at, k))
		}
	}
	// A bound the check compares is a number: OpenAPI 3.0's "exclusiveMaximum": true would be
	// passed over.
	for _, k := range []string{"minimum", "maximum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems"} {
		if v, ok := schema[k]; ok {
			if _, num := v.(float64); !num {
				errs = append(errs, fmt.Sprintf("%s: %s must be a number, got %v", at, k, v))
			}
		}
	}
	if p, ok := schema["pattern"].(string); ok {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Sprintf("%s: pattern: %v", at, err))
		}
	}
	// The check holds every object to its named properties (see the package's comment): false
	// says so to a client, any other value would say what the check does not do.
	if a, ok := schema["additionalProperties"]; ok && a != false {
		errs = append(errs, fmt.Sprintf("%s: additionalProperties may only be false, got %v", at, a))
	} else if _, all := schema["allOf"]; ok && all {
		errs = append(errs, fmt.Sprintf("%s: additionalProperties beside allOf: JSON Schema would not count the parts' properties", at))
	}
	props, _ := schema["properties"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if p, ok := props[k].(map[string]any); ok {
			errs = append(errs, d.schemaErrors(at+"/properties/"+k, p)...)
		}
	}
	if items, ok := schema["items"].(map[string]any); ok {
		errs = append(errs, d.schemaErrors(at+"/items", items)...)
	}
	named := map[string]string{}
	for k := range props {
		named[k] = "its own properties"
	}
	for i, sub := range list(schema["allOf"]) {
		part := "allOf part " + strconv.Itoa(i)
		errs = append(errs, d.schemaErrors(at+"/allOf/"+strconv.Itoa(i), sub)...)
		if _, ok := d.deref(sub)["items"]; ok {
			errs = append(errs, fmt.Sprintf("%s: %s has items, which the check reads only of the whole schema", at, part))
		}
		if _, ok := d.deref(sub)["additionalProperties"]; ok {
			errs = append(errs, fmt.Sprintf("%s: additionalProperties in a part of an allOf: JSON Schema would close the whole to that part's properties", at))
		}
		for _, k := range slices.Sorted(maps.Keys(d.properties(sub))) {
			if prev, dup := named[k]; dup {
				errs = append(errs, fmt.Sprintf("%s: property %q is in %s and %s", at, k, prev, part))
			}
			named[k] = part
		}
	}
	return errs
}

// resolve returns what a local reference ("#/components/schemas/Order") names.
func (d *Document) resolve(ref string) (map[string]any, error) {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var at any = d.raw
	for _, part := range strings.Split(path, "/") {
		m, ok := at.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %q is inside no object", ref, part)
		}
		if at, ok = m[part]; !ok {
			return nil, fmt.Errorf("reference %q: no %q", ref, part)
		}
	}
	m, ok := at.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("reference %q names no object", ref)
	}
	return m, nil
}

// maxRefs bounds the references deref follows from one object: a cycle of them (A to B to A)
// names nothing, and must not hang a test.
const maxRefs = 32

// deref follows $refs until it reaches an object that is no reference; nil for a reference that
// names nothing, or a cycle.
func (d *Document) deref(v map[string]any) map[string]any {
	for range maxRefs {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		v, _ = d.resolve(ref) // nil when it names nothing, which Parse reports
	}
	return nil
}

// Version is the OpenAPI version the document declares.
func (d *Document) Version() string {
	v, _ := d.raw["openapi"].(string)
	return v
}

// httpMethods are the keys of a path item that are operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations returns every operation as a route pattern of Go's ServeMux, "GET /v1/orders/{id}",
// sorted.
func (d *Document) Operations() []string {
	var ops []string
	paths, _ := d.raw["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range httpMethods {
			if _, ok := item[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// operation returns the operation op ("POST /v1/orders") names, nil when there is none.
func (d *Document) operation(op string) map[string]any {
	method, path, _ := strings.Cut(op, " ")
	paths, _ := d.raw["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	o, _ := item[strings.ToLower(method)].(map[string]any)
	return o
}

// OperationID returns the operationId of op, "" when it has none.
func (d *Document) OperationID(op string) string {
	id, _ := d.operation(op)["operationId"].(string)
	return id
}

// QueryParams returns the names of the query parameters op takes, its path item's and its own,
// references followed, sorted.
func (d *Document) QueryParams(op string) []string {
	_, path, _ := strings.Cut(op, " ")
	paths, _ := d.raw["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	var names []string
	for _, p := range append(list(item["parameters"]), list(d.operation(op)["parameters"])...) {
		if p = d.deref(p); p != nil && p["in"] == "query" {
			name, _ := p["name"].(string)
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Schemas returns the names of the schemas under components, sorted.
func (d *Document) Schemas() []string {
	return slices.Sorted(maps.Keys(d.components("schemas")))
}

func (d *Document) components(kind string) map[string]any {
	c, _ := d.raw["components"].(map[string]any)
	m, _ := c[kind].(map[string]any)
	return m
}

// Schema returns the schema of that name under components.
func (d *Document) Schema(name string) (map[string]any, error) {
	return d.resolve("#/components/schemas/" + name)
}

// Properties returns the properties an object schema names, those of its allOf included, sorted.
func (d *Document) Properties(schema map[string]any) []string {
	return slices.Sorted(maps.Keys(d.properties(schema)))
}

// properties returns the properties an object schema names, with those of its allOf.
func (d *Document) properties(schema map[string]any) map[string]any {
	schema = d.deref(schema)
	props := map[string]any{}
	if p, ok := schema["properties"].(map[string]any); ok {
		maps.Copy(props, p)
	}
	for _, sub := range list(schema["allOf"]) {
		maps.Copy(props, d.properties(sub))
	}
	return props
}

// Property returns the schema of an object schema's property, nil when it has no such property.
func (d *Document) Property(schema map[string]any, name string) map[string]any {
	p, _ := d.properties(schema)[name].(map[string]any)
	return p
}

// Enum returns the values a schema allows as strings, nil when it lists none.
func (d *Document) Enum(schema map[string]any) []string {
	var out []string
	values, _ := d.deref(schema)["enum"].([]any)
	for _, v := range values {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// Response returns the schema of the answer operation op ("POST /v1/orders") gives with status
// code and content type, or an error when the description has none such.
func (d *Document) Response(op string, code int, contentType string) (map[string]any, error) {
	o := d.operation(op)
	if o == nil {
		return nil, fmt.Errorf("the description has no operation %s", op)
	}
	responses, _ := o["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(code)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s describes no %d answer", op, code)
	}
	content, _ := d.deref(r)["content"].(map[string]any)
	media, ok := content[contentType].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s describes its %d answer with no %s body", op, code, contentType)
	}
	schema, _ := media["schema"].(map[string]any)
	return schema, nil
}

// Request returns the schema of the body operation op takes in content type contentType, or an
// error when the description gives it none.
func (d *Document) Request(op, contentType string) (map[string]any, error) {
	o := d.operation(op)
	if o == nil {
		return nil, fmt.Errorf("the description has no operation %s", op)
	}
	body, _ := o["requestBody"].(map[string]any)
	content, _ := d.deref(body)["content"].(map[string]any)
	media, ok := content[contentType].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s takes no %s body in the description", op, contentType)
	}
	schema, _ := media["schema"].(map[string]any)
	return schema, nil
}

// Check reports how value, decoded from JSON into an any, breaks schema, or nil when it holds to
// it.
func (d *Document) Check(schema map[string]any, value any) error {
	var errs []string
	d.check("$", schema, value, &errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// CheckJSON is Check of a JSON text.
func (d *Document) CheckJSON(schema map[string]any, text []byte) error {
	var v any
	if err := json.Unmarshal(text, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return d.Check(schema, v)
}

func (d *Document) check(at string, schema map[string]any, v any, errs *[]string) {
	schema = d.deref(schema)
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	if !d.checkValue(at, schema, v, errs) {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		props := d.properties(schema)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p, ok := props[k].(map[string]any)
			if !ok {
				// An object whose schema names no property (an order's details) holds
				// anything; one that names some, only those.
				if len(props) > 0 {
					fail("property %q is not in the description", k)
				}
				continue
			}
			d.check(at+"."+k, p, v[k], errs)
		}
		for _, r := range d.required(schema) {
			if _, ok := v[r]; !ok {
				fail("required property %q is missing", r)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				d.check(at+"["+strconv.Itoa(i)+"]", items, e, errs)
			}
		}
	}
}

// checkValue checks what a schema and each part of its allOf say of v itself (its type, enum,
// pattern and bounds), and reports whether v is of every type they name: properties, required
// and items are checked once for the whole schema (check).
func (d *Document) checkValue(at string, schema map[string]any, v any, errs *[]string) bool {
	schema = d.deref(schema)
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	typed := true
	if t, ok := schema["type"]; ok && !typeMatches(t, v) {
		fail("%s is not of type %v", describe(v), t)
		typed = false
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		fail("%s is none of %v", describe(v), enum)
	}
	if p, ok := schema["pattern"].(string); ok {
		if s, isString := v.(string); isString && !regexp.MustCompile(p).MatchString(s) { // Parse compiled it
			fail("%q does not match %s", s, p)
		}
	}
	d.checkBounds(at, schema, v, errs)
	for _, sub := range list(schema["allOf"]) {
		typed = d.checkValue(at, sub, v, errs) && typed
	}
	return typed
}

// required returns the properties a schema and its allOf require.
func (d *Document) required(schema map[string]any) []string {
	schema = d.deref(schema)
	var out []string
	names, _ := schema["required"].([]any)
	for _, r := range names {
		out = append(out, fmt.Sprint(r))
	}
	for _, sub := range list(schema["allOf"]) {
		out = append(out, d.required(sub)...)
	}
	return out
}

func (d *Document) checkBounds(at string, schema map[string]any, v any, errs *[]string) {
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	bound := func(key string) (float64, bool) {
		f, ok := schema[key].(float64)
		return f, ok
	}
	switch v := v.(type) {
	case float64:
		if m, ok := bound("minimum"); ok && v < m {
			fail("%v is under the minimum %v", v, m)
		}
		if m, ok := bound("maximum"); ok && v > m {
			fail("%v is over the maximum %v", v, m)
		}
		if m, ok := bound("exclusiveMaximum"); ok && v >= m {
			fail("%v is not under the exclusive maximum %v", v, m)
		}
	case string:
		n := float64(utf8.RuneCountInString(v))
		if m, ok := bound("minLength"); ok && n < m {
			fail("%q is shorter than %v", v, m)
		}
		if m, ok := bound("maxLength"); ok && n > m {
			fail("%q is longer than %v", v, m)
		}
	case []any:
		if m, ok := bound("minItems"); ok && float64(len(v)) < m {
			fail("%d items, under %v", len(v), m)
		}
		if m, ok := bound("maxItems"); ok && float64(len(v)) > m {
			fail("%d items, over %v", len(v), m)
		}
	}
}

// typeMatches reports whether v is of JSON Schema type t: a name, or a list of names.
func typeMatches(t, v any) bool {
	if names, ok := t.([]any); ok {
		return slices.ContainsFunc(names, func(n any) bool { return typeMatches(n, v) })
	}
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	}
	return false
}

func list(v any) []map[string]any {
	var out []map[string]any
	vs, _ := v.([]any)
	for _, e := range vs {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// describe names a value in a complaint, briefly.
func describe(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
