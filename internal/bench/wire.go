package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// wireConn is one keep-alive HTTP/1.1 connection on which the load sends its writes, speaking
// the protocol itself as wrk and h2load do. The load shares the cores with the server it
// measures, and net/http's client spends more of them per request than the server does: two
// goroutines per connection handing every exchange between them, a header map, a URL parse and
// a context per request (at 3,000 writes/s it took 0.43 of this machine's 2 cores, most of it
// there). A wireConn writes each request with one call and parses only what the load checks.
// It is not a general client: one goroutine uses it at a time, it sends only POSTs with a JSON
// body, and it reads only the status, the length and the connection's fate from an answer.
type wireConn struct {
	host    string // host:port, for the dial and the Host header
	token   string
	timeout time.Duration
	stop    context.Context // closing the connection when it ends breaks an exchange in flight
	conn    net.Conn
	unhook  func() bool // undoes the hook that closes conn when stop ends
	r       *bufio.Reader
	req     []byte // the request being written, reused
	body    []byte // the last answer's body, reused
	usedAt  time.Time
	// retryAfter is how long the connection must have idled for a request that found it closed
	// before any answer to be sent once more on a new one: a server (or a proxy) closes idle
	// keep-alive connections, and such a request never reached a handler. Under load no
	// connection idles that long, so no request is sent twice there.
	retryAfter time.Duration
}

// newWireConn returns a connection to the server at base (http://host:port) that sends token
// as a bearer token. Each exchange must end within timeout; ctx ending ends any in flight. It
// dials on first use, and again after any exchange that failed.
func newWireConn(ctx context.Context, base, token string, timeout time.Duration) (*wireConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bench: server URL %q: %w", base, err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("bench: server URL %q: want http://host:port", base)
	}
	return &wireConn{host: u.Host, token: token, timeout: timeout, stop: ctx, retryAfter: time.Second}, nil
}

// wirePool is a pool of loaders' connections: pool[g][n] is loader g's connection to node n.
type wirePool [][]*wireConn

// newWirePool returns, for each of loaders loaders, a connection to each of urls, dialled on
// first use.
func newWirePool(ctx context.Context, loaders int, urls []string, token string, timeout time.Duration) (wirePool, error) {
	pool := make(wirePool, loaders)
	for g := range pool {
		for _, u := range urls {
			c, err := newWireConn(ctx, u, token, timeout)
			if err != nil {
				return nil, err
			}
			pool[g] = append(pool[g], c)
		}
	}
	return pool, nil
}

// close drops every connection of the pool; none may be in use.
func (pool wirePool) close() {
	for _, cs := range pool {
		for _, c := range cs {
			c.close()
		}
	}
}

// close drops the connection, if one is open.
func (w *wireConn) close() {
	if w.conn == nil {
		return
	}
	w.unhook()
	_ = w.conn.Close() // nothing is in flight: there is nothing to lose
	w.conn, w.r = nil, nil
}

// post sends body to path as JSON and returns the answer's status and body; the body is valid
// until the next post. An exchange that fails, or an answer that ends the connection, closes it;
// one that found an idle connection closed is sent once more on a new one (see retryAfter).
func (w *wireConn) post(path string, body []byte) (int, []byte, error) {
	return w.postAs(w.token, path, body)
}

// postAs is post with token in place of the connection's.
func (w *wireConn) postAs(token, path string, body []byte) (int, []byte, error) {
	if err := w.stop.Err(); err != nil {
		return 0, nil, err
	}
	now := time.Now()
	idled := w.conn != nil && now.Sub(w.usedAt) >= w.retryAfter
	code, err := w.dialAndExchange(now, token, path, body)
	if err != nil && idled && errors.Is(err, errNoAnswer) {
		code, err = w.dialAndExchange(now, token, path, body)
	}
	if err != nil {
		if ctxErr := w.stop.Err(); ctxErr != nil {
			err = ctxErr // the deadline the hook set is not the reason
		}
		return 0, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return code, w.body, nil
}

// dialAndExchange sends one request, on a new connection if there is none open, and closes the
// connection after a failure or an answer that ends it.
func (w *wireConn) dialAndExchange(now time.Time, token, path string, body []byte) (int, error) {
	if w.conn == nil {
		if err := w.dial(); err != nil {
			return 0, err
		}
	}
	code, keep, err := w.exchange(now, token, path, body)
	if err != nil || !keep {
		w.close()
	}
	w.usedAt = time.Now() // idle from the end of the exchange, not its start (see retryAfter)
	return code, err
}

// errNoAnswer is a connection that ended before the first byte of an answer.
var errNoAnswer = errors.New("the connection ended before an answer")

func (w *wireConn) dial() error {
	d := net.Dialer{Timeout: w.timeout}
	c, err := d.DialContext(w.stop, "tcp", w.host)
	if err != nil {
		return fmt.Errorf("bench: dial %s: %w", w.host, err)
	}
	w.conn, w.r = c, bufio.NewReaderSize(c, 4<<10)
	w.unhook = context.AfterFunc(w.stop, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// exchange writes one request and reads its answer into w.body; keep says whether the
// connection may carry the next one.
func (w *wireConn) exchange(now time.Time, token, path string, body []byte) (code int, keep bool, err error) {
	if err := w.conn.SetDeadline(now.Add(w.timeout)); err != nil {
		return 0, false, err
	}
	if err := w.stop.Err(); err != nil {
		return 0, false, err // the hook may have run before the deadline above replaced its own
	}
	req := append(w.req[:0], "POST "...)
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, w.host...)
	if token != "" {
		req = append(req, "\r\nAuthorization: Bearer "...)
		req = append(req, token...)
	}
	req = append(req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	w.req = req
	if _, err := w.conn.Write(req); err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return w.readAnswer()
}

var errBadAnswer = errors.New("malformed HTTP answer")

// readAnswer reads a status line, the headers and the body (by Content-Length, chunked, or to
// the end of the connection).
func (w *wireConn) readAnswer() (code int, keep bool, err error) {
	line, err := w.line()
	if err != nil {
		if len(line) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err) // not a byte of an answer came
		}
		return 0, false, err
	}
	// "HTTP/1.1 200 OK": the version, a space, three digits.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errBadAnswer, line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil || code < 100 {
		return 0, false, fmt.Errorf("%w: status line %q", errBadAnswer, line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; the server never says so
	length, chunked := -1, false
	for {
		if line, err = w.line(); err != nil {
			return 0, false, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errBadAnswer, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 || length > maxAnswerBytes {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errBadAnswer, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
			if !chunked {
				return 0, false, fmt.Errorf("%w: Transfer-Encoding %q", errBadAnswer, value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	w.body = w.body[:0]
	switch {
	case code < 200 || code == 204 || code == 304:
		// No body (RFC 9112, section 6.3); an interim answer is never sent to a request without
		// Expect.
		if code < 200 {
			return 0, false, fmt.Errorf("%w: interim status %d", errBadAnswer, code)
		}
	case chunked:
		err = w.readChunked()
	case length >= 0:
		w.body = grow(w.body, length)
		_, err = io.ReadFull(w.r, w.body)
	default:
		// Neither: the body runs to the end of the connection.
		keep = false
		var buf bytes.Buffer
		_, err = buf.ReadFrom(io.LimitReader(w.r, maxAnswerBytes))
		w.body = append(w.body, buf.Bytes()...)
	}
	return code, keep, err
}

// maxAnswerBytes bounds an answer's body: the load's answers are a few hundred bytes.
const maxAnswerBytes = 1 << 20

func (w *wireConn) readChunked() error {
	for {
		line, err := w.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";")) // chunk extensions are ignored
		n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
		if err != nil || len(w.body)+int(n) > maxAnswerBytes {
			return fmt.Errorf("%w: chunk size %q", errBadAnswer, line)
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				if line, err = w.line(); err != nil || len(line) == 0 {
					return err
				}
			}
		}
		at := len(w.body)
		w.body = grow(w.body, at+int(n))
		if _, err := io.ReadFull(w.r, w.body[at:]); err != nil {
			return err
		}
		if line, err = w.line(); err != nil {
			return err
		} else if len(line) != 0 {
			return fmt.Errorf("%w: chunk ends with %q", errBadAnswer, line)
		}
	}
}

// line reads one line without its CRLF; it is valid until the next read. On an error it
// returns what it read of the line.
func (w *wireConn) line() ([]byte, error) {
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = fmt.Errorf("%w: a line longer than %d bytes", errBadAnswer, w.r.Size())
		}
		return line, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// grow returns b with length n, reusing its array when it is large enough.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)
}
