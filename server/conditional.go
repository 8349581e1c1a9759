package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ordercast/ordercast"
)

// Conditional requests (RFC 9110 §13) on an order. Its entity tag is its version, "v7": every
// change of the order is a new version, and the order's representation (GET /v1/orders/{id})
// is a function of it, and of whether its customer data was erased, which changes it with no
// new version: an erased order's tag is "v7-erased", so that a client holding the data from
// before is answered the order as it is now, not 304. GET answers If-None-Match with 304; a
// change (a status, a courier) sent with If-Match is applied only at the version its tag names,
// as expected_version does, and one that finds the order at another version is refused 412
// precondition_failed. The
// check is the store's, in the change's own transaction: there is no read before the write
// for another write to slip between.

// erasedTag ends the entity tag of an erased order's representation.
const erasedTag = "-erased"

// orderETag is the entity tag of o's representation.
func orderETag(o ordercast.Order) string {
	tag := "v" + strconv.FormatInt(o.Version, 10)
	if o.ErasedAt != nil {
		tag += erasedTag
	}
	return `"` + tag + `"`
}

// tagVersion reads the version of an order's entity tag, unquoted, as orderETag wrote it
// ("v7", "v7-erased"); ok is false for a tag this server never made.
func tagVersion(tag string) (version int64, ok bool) {
	digits, ours := strings.CutPrefix(strings.TrimSuffix(tag, erasedTag), "v")
	n, ok := parseNonNegative(digits)
	return n, ours && ok && n >= 1
}

// notModified reports whether r's If-None-Match holds the tag etag (weak comparison, as RFC 9110
// §13.1.2 asks), or "*": the client has the representation already.
func notModified(r *http.Request, etag string) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
	}
	return false
}

// ifMatch reads r's If-Match into the version a change must find (expected, from the body's
// expected_version, 0 for any): the tag's version, which must agree with expected when both are
// given. conditional reports that If-Match was sent, so that a conflict is answered 412. "*" asks
// only that the order exist, which a change needs anyway. One tag is taken: a change is applied
// at one version, and a list would need a read before the write to pick one.
func ifMatch(r *http.Request, expected int64) (version int64, conditional bool, err error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return expected, false, nil
	}
	v := strings.TrimSpace(strings.Join(vs, ","))
	if v == "*" {
		return expected, true, nil
	}
	if strings.Contains(v, ",") {
		return 0, true, errIfMatchForm
	}
	if strings.HasPrefix(v, "W/") {
		// A weak tag never matches under If-Match's strong comparison (RFC 9110 §13.1.1).
		return 0, true, ordercast.Errorf(ordercast.EPreconditionFailed, "If-Match takes a strong entity tag, not %s", ordercast.Quote(v))
	}
	// An entity tag is quoted (RFC 9110 §8.8.3): one that is not is refused as malformed; a
	// quoted one this server did not make is a tag of no version of the order. An erased
	// order's names its version too: a change sent with it is refused as any change of an
	// ended order is.
	tag, opened := strings.CutPrefix(v, `"`)
	tag, closed := strings.CutSuffix(tag, `"`)
	if !opened || !closed {
		return 0, true, errIfMatchForm
	}
	n, ok := tagVersion(tag)
	if !ok {
		// Not a tag this server made: no version of the order has it.
		return 0, true, ordercast.Errorf(ordercast.EPreconditionFailed, "If-Match %s is no version of the order", ordercast.Quote(v))
	}
	if expected != 0 && expected != n {
		return 0, true, ordercast.Errorf(ordercast.EInvalid, "If-Match names version %d and expected_version %d", n, expected)
	}
	return n, true, nil
}

// errIfMatchForm refuses an If-Match that is not one entity tag or *: a list (whatever its first
// tag), or a tag not quoted.
var errIfMatchForm = ordercast.Errorf(ordercast.EInvalid, `If-Match must be one entity tag of the order ("v7", or "v7-erased", as GET /v1/orders/{id} gives in ETag) or *`)

// preconditionFailed is err as a change sent with If-Match answers it: the order at another
// version is 412, not 409.
func preconditionFailed(conditional bool, err error) error {
	if current, ok := ordercast.ConflictVersion(err); conditional && ok {
		return &ordercast.VersionConflict{Err: ordercast.Errorf(ordercast.EPreconditionFailed, "%s (If-Match)", ordercast.ErrorMessage(err)), Current: current}
	}
	return err
}
