package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/openapi"
	"github.com/ordercast/ordercast/location"
)

// TestOpenAPIIsADescription: the description is OpenAPI 3.1, every reference in it resolves
// (Parse), and every operation has an id of its own, which client generators name methods by.
func TestOpenAPIIsADescription(t *testing.T) {
	doc := openapi.MustParse(t, OpenAPI)
	if v := doc.Version(); v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	ids := map[string]string{}
	for _, op := range doc.Operations() {
		id := doc.OperationID(op)
		if id == "" {
			t.Errorf("%s has no operationId", op)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share the operationId %s", other, op, id)
		}
		ids[id] = op
	}
}

// schemaTypes maps each schema of the description to the type it describes.
var schemaTypes = map[string]reflect.Type{
	"Point":                 reflect.TypeFor[ordercast.Point](),
	"Order":                 reflect.TypeFor[ordercast.Order](),
	"Event":                 reflect.TypeFor[ordercast.Event](),
	"LocationUpdate":        reflect.TypeFor[ordercast.LocationUpdate](),
	"TrailFix":              reflect.TypeFor[ordercast.TrailFix](),
	"CreateOrderRequest":    reflect.TypeFor[CreateOrderRequest](),
	"CreateOrderResponse":   reflect.TypeFor[CreateOrderResponse](),
	"SetStatusRequest":      reflect.TypeFor[SetStatusRequest](),
	"SetCourierRequest":     reflect.TypeFor[SetCourierRequest](),
	"ChangeResponse":        reflect.TypeFor[SetStatusResponse](),
	"EraseCustomerResponse": reflect.TypeFor[EraseCustomerResponse](),
	"TrackingTokenResponse": reflect.TypeFor[TrackingTokenResponse](),
	"OrderStatusChange":     reflect.TypeFor[OrderStatusChange](),
	"SetStatusesRequest":    reflect.TypeFor[SetStatusesRequest](),
	"StatusResult":          reflect.TypeFor[StatusResult](),
	"SetStatusesResponse":   reflect.TypeFor[SetStatusesResponse](),
	"EventsResponse":        reflect.TypeFor[EventsResponse](),
	"ListOrdersResponse":    reflect.TypeFor[ListOrdersResponse](),
	"PostLocationRequest":   reflect.TypeFor[PostLocationRequest](),
	"PostLocationResponse":  reflect.TypeFor[PostLocationResponse](),
	"CourierPosition":       reflect.TypeFor[CourierPosition](),
	"PostLocationsRequest":  reflect.TypeFor[PostLocationsRequest](),
	"LocationResult":        reflect.TypeFor[LocationResult](),
	"PostLocationsResponse": reflect.TypeFor[PostLocationsResponse](),
	"TrailResponse":         reflect.TypeFor[TrailResponse](),
	"LongPollResponse":      reflect.TypeFor[LongPollResponse](),
	"PartySnapshot":         reflect.TypeFor[PartySnapshot](),
	"StreamEnd":             reflect.TypeFor[StreamEnd](),
	"ErrorDetail":           reflect.TypeFor[ErrorDetail](),
	"Error":                 reflect.TypeFor[ErrorBody](),
}

// notOnTheWire are fields of a type that no answer carries: an event's marks, which Wire takes
// off before any answer or stream sends it.
var notOnTheWire = map[string][]string{"Event": {"marks"}}

// TestOpenAPISchemasHoldTheTypes: each schema names exactly the JSON fields of the type it
// describes, so that a field added to a type, or renamed, and not to the description fails
// here rather than go unseen by every generated client. Every object's schema is mapped to its
// type.
func TestOpenAPISchemasHoldTheTypes(t *testing.T) {
	doc := openapi.MustParse(t, OpenAPI)
	for _, name := range doc.Schemas() {
		schema, err := doc.Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		typ, ok := schemaTypes[name]
		if !ok {
			if len(doc.Properties(schema)) > 0 {
				t.Errorf("schema %s describes no type this test knows: add it to schemaTypes", name)
			}
			continue // a value's schema (Status, Note): TestOpenAPIEnums checks the enums
		}
		want := slices.DeleteFunc(jsonFields(typ), func(f string) bool { return slices.Contains(notOnTheWire[name], f) })
		slices.Sort(want)
		if got := doc.Properties(schema); !slices.Equal(got, want) {
			t.Errorf("schema %s has the properties %v; %s has the fields %v", name, got, typ, want)
		}
	}
}

// jsonFields returns the names encoding/json gives t's fields, those of embedded structs
// included.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case name == "-":
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			names = append(names, jsonFields(ft)...)
		case !f.IsExported():
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	return names
}

// TestOpenAPIEnums: the statuses and the error codes the description lists are the ones the
// server has.
func TestOpenAPIEnums(t *testing.T) {
	doc := openapi.MustParse(t, OpenAPI)
	status, _ := doc.Schema("Status")
	var statuses []string
	for _, s := range ordercast.Statuses {
		statuses = append(statuses, string(s))
	}
	if got := doc.Enum(status); !slices.Equal(got, statuses) {
		t.Errorf("the description's statuses are %v, the server's %v", got, statuses)
	}
	detail, _ := doc.Schema("ErrorDetail")
	var codes []string
	for _, cs := range codeStatus {
		codes = append(codes, cs.code)
	}
	got := doc.Enum(doc.Property(detail, "code"))
	slices.Sort(got)
	slices.Sort(codes)
	if !slices.Equal(got, codes) {
		t.Errorf("the description's error codes are %v, the server's %v", got, codes)
	}
	missed, _ := doc.Schema("Missed")
	var want []string
	for _, why := range location.Misses() {
		want = append(want, string(why))
	}
	if got := doc.Enum(missed); !slices.Equal(got, want) {
		t.Errorf("the description's reasons a position reached no order are %v, the tracker's %v", got, want)
	}
}

// TestQueryParamsAreTheDescriptions: the query parameters the server takes on each route
// (QueryParams, by which it refuses any other) are those the description gives it, for every
// operation, and QueryParams names no route the description lacks.
func TestQueryParamsAreTheDescriptions(t *testing.T) {
	doc := openapi.MustParse(t, OpenAPI)
	ops := doc.Operations()
	for _, op := range ops {
		want := slices.Sorted(slices.Values(QueryParams[op]))
		if got := doc.QueryParams(op); !slices.Equal(got, want) {
			t.Errorf("%s: the description gives the query parameters %q, QueryParams %q", op, got, want)
		}
	}
	for route := range QueryParams {
		if !slices.Contains(ops, route) {
			t.Errorf("QueryParams names %s, which the description does not", route)
		}
	}
}
