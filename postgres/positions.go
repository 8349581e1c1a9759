package postgres

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
)

// The notices that carry positions between nodes on PositionsChannel. Every node reads every
// position the others take in, up to tens of thousands a second, so the format is made to be
// read fast: JSON took 2.7 µs and 11 allocations a position (the listener's goroutine spent a
// quarter of its node's CPU on it). A notice is lines of text:
//
//	2 <node>
//	<order>\t<courier>\t<lat>\t<lng>\t<at>\t<accuracy_m>\t<heading>\t<speed_mps>\t<distance_m>\t<eta_s>\t<nearby>\t<parties>\t<order_version>
//	…
//
// The first line is the format's version and the sending node's id, so that a node skips its own
// notices without reading them (it holds its positions already). Each further line is one
// position: numbers as strconv writes them (floats exact), at in Unix nanoseconds, an optional
// field empty when absent, nearby "1" or empty, parties comma-separated, the order's version the
// position was judged against (ordercast.LocationUpdate.OrderVersion) empty when unknown. Text
// fields are escaped with %XX for '%', tab, newline, comma and NUL, so that any id round-trips and
// a payload never holds a NUL byte, which NOTIFY refuses. Version 1 (2026-12-01) had no
// order_version; a node still reads it, as positions of unknown version, during a rolling
// upgrade from it (a node of version 1 refuses version 2: --location-legacy-notices sends it
// every batch in the JSON it also reads).

// PositionsChannel is the NOTIFY channel of position notices. LocationChannel carried them as
// JSON until 2026-12; a node still listens there, so that positions from a node of an older
// version reach it during a rolling upgrade (an older node does not hear this channel).
const PositionsChannel = "ordercast_positions"

const positionsVersion = "2"

// positionFields is how many tab-separated fields a position line has.
const positionFields = 13

// linesFields is how many fields a line has in each version of the format a node reads: version
// 1's had no order_version.
var linesFields = map[string]int{"1": positionFields - 1, positionsVersion: positionFields}

// NewNodeID returns a random id for a node (Store.NodeID): new at every start, so that two runs
// of one node, one ending as the other starts, are never taken for each other.
func NewNodeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// positionPacker packs position lines into as few notices of at most max bytes as they fit,
// each under the header line naming the format and the sending node.
type positionPacker struct {
	notices noticePacker // notify.go
	line    []byte
}

func newPositionPacker(node string, max int) *positionPacker {
	return &positionPacker{notices: noticePacker{open: positionsVersion + " " + node + "\n", sep: "\n", max: max}}
}

// add appends u's line; a line that cannot fit a notice even alone is an error.
func (p *positionPacker) add(u ordercast.LocationUpdate) error {
	p.line = appendPosition(p.line[:0], u)
	return p.notices.addPosition(p.line, u.OrderID)
}

// done returns the notices.
func (p *positionPacker) done() []string { return p.notices.done() }

func appendPosition(b []byte, u ordercast.LocationUpdate) []byte {
	b = appendEscaped(b, u.OrderID)
	b = append(b, '\t')
	b = appendEscaped(b, u.CourierID)
	b = append(b, '\t')
	b = strconv.AppendFloat(b, u.Lat, 'g', -1, 64)
	b = append(b, '\t')
	b = strconv.AppendFloat(b, u.Lng, 'g', -1, 64)
	b = append(b, '\t')
	b = strconv.AppendInt(b, u.At.UnixNano(), 10)
	for _, f := range []*float64{u.AccuracyM, u.Heading, u.SpeedMPS, u.DistanceM} {
		b = append(b, '\t')
		if f != nil {
			b = strconv.AppendFloat(b, *f, 'g', -1, 64)
		}
	}
	b = append(b, '\t')
	if u.ETAS != nil {
		b = strconv.AppendInt(b, *u.ETAS, 10)
	}
	b = append(b, '\t')
	if u.Nearby {
		b = append(b, '1')
	}
	b = append(b, '\t')
	for i, party := range u.Parties {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEscaped(b, party)
	}
	b = append(b, '\t')
	if u.OrderVersion != 0 {
		b = strconv.AppendInt(b, u.OrderVersion, 10)
	}
	return b
}

// escaped are the bytes a text field writes as %XX.
func escaped(c byte) bool { return c == '%' || c == '\t' || c == '\n' || c == ',' || c == 0 }

func appendEscaped(b []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		if c := s[i]; escaped(c) {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// decodePositions reads one notice on PositionsChannel. It returns no positions and no error for
// a notice node sent itself.
func decodePositions(payload, node string) ([]ordercast.LocationUpdate, error) {
	header, rest, _ := strings.Cut(payload, "\n")
	version, from, ok := strings.Cut(header, " ")
	fields := linesFields[version]
	switch {
	case !ok || fields == 0:
		return nil, fmt.Errorf("decode positions: unknown notice header %.40q", header)
	case from == node:
		return nil, nil
	}
	us := make([]ordercast.LocationUpdate, 0, strings.Count(rest, "\n")+1)
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		u, err := decodePosition(line, fields)
		if err != nil {
			return nil, fmt.Errorf("decode positions: %w", err)
		}
		us = append(us, u)
	}
	return us, nil
}

// decodePosition reads one line of n fields (linesFields).
func decodePosition(line string, n int) (ordercast.LocationUpdate, error) {
	var f [positionFields]string
	rest := line
	for i := range n - 1 {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, "\t"); !ok {
			return ordercast.LocationUpdate{}, fmt.Errorf("%d fields in %.80q, want %d", i+1, line, n)
		}
	}
	if f[n-1] = rest; strings.Contains(rest, "\t") {
		return ordercast.LocationUpdate{}, fmt.Errorf("more than %d fields in %.80q", n, line)
	}
	var first error // the first field that did not parse
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	text := func(s string) string {
		v, err := unescape(s)
		keep(err)
		return v
	}
	number := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		keep(err)
		return v
	}
	optional := func(s string) *float64 {
		if s == "" {
			return nil
		}
		v := number(s)
		return &v
	}
	u := ordercast.LocationUpdate{Type: ordercast.LocationType}
	u.OrderID, u.CourierID = text(f[0]), text(f[1])
	u.Lat, u.Lng = number(f[2]), number(f[3])
	at, err := strconv.ParseInt(f[4], 10, 64)
	keep(err)
	u.At = time.Unix(0, at).UTC()
	u.AccuracyM, u.Heading, u.SpeedMPS, u.DistanceM = optional(f[5]), optional(f[6]), optional(f[7]), optional(f[8])
	if f[9] != "" {
		eta, err := strconv.ParseInt(f[9], 10, 64)
		keep(err)
		u.ETAS = &eta
	}
	u.Nearby = f[10] == "1"
	if f[11] != "" {
		for party := range strings.SplitSeq(f[11], ",") {
			u.Parties = append(u.Parties, text(party))
		}
	}
	if f[12] != "" {
		v, err := strconv.ParseInt(f[12], 10, 64)
		keep(err)
		u.OrderVersion = v
	}
	if first != nil {
		return ordercast.LocationUpdate{}, fmt.Errorf("position %.80q: %w", line, first)
	}
	return u, nil
}
