package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an output, a logger's or a child process's, that many goroutines write while a test
// reads it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count is how many times s was written so far (lines that say s, for a log).
func (b *Buffer) Count(s string) int { return strings.Count(b.String(), s) }
