package client

// DecodeUTF8 exposes the WHATWG UTF-8 decoder to the black-box tests, whose reference parser
// decodes a whole stream at once where SSEReader decodes piece by piece.
func DecodeUTF8(b []byte) string { return decodeUTF8(b) }
