package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ordercast/ordercast"
)

// The claims this service reads from a token, as their JSON names spell them: of an actor
// token, and of a tracking token. Others, an identity provider's own, may be spelled as it likes.
var (
	actorClaimNames    = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "role"}
	trackingClaimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "courier", "via", "created"}
)

// checkClaimNames refuses a token whose payload writes a claim this service reads twice, or in
// another letter case ("AUD", "Role", "i\u017f\u017f" with the long s). encoding/json, which
// decodes the claims, matches names ignoring case and keeps the last of several, so such a token
// would meet the audience, issuer or role check with a claim its identity provider never meant
// as that one: a custom claim whose name another application of the same tenant chose, say. The
// request bodies are held to the same rule (server's keyProblem). It runs once a token's
// signature verified, so the payload is one JSON object.
func checkClaimNames(token string, claimNames []string) error {
	_, rest, _ := strings.Cut(token, ".")
	segment, _, _ := strings.Cut(rest, ".")
	payload, err := base64.RawURLEncoding.Strict().DecodeString(segment)
	if err != nil {
		return claimsError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if _, err := dec.Token(); err != nil { // the object's '{'
		return claimsError(err)
	}
	seen := make([]bool, len(claimNames)) // a token is verified once, then cached
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return claimsError(err)
		}
		name, _ := tok.(string)
		for i, claim := range claimNames {
			if !strings.EqualFold(name, claim) {
				continue
			}
			if name != claim || seen[i] {
				return ordercast.Errorf(ordercast.EUnauthenticated, "token claim %q is written twice, or in another letter case", claim)
			}
			seen[i] = true
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return claimsError(err)
		}
		// A time is a JSON number (RFC 7519's NumericDate); the JWT library reads a string of
		// digits too, a second spelling of one claim that another verifier may read otherwise.
		if (name == "exp" || name == "nbf" || name == "iat") && len(value) > 0 && value[0] == '"' {
			return ordercast.Errorf(ordercast.EUnauthenticated, "token claim %q must be a number of seconds, not a string", name)
		}
	}
	return nil
}

// claimsError is the refusal of a payload that does not read as the JSON object it verified as:
// not reached, since the claims decoded before the signature was checked.
func claimsError(err error) error {
	return fmt.Errorf("%w: %w", ordercast.Errorf(ordercast.EUnauthenticated, "invalid token"), err)
}
