package webhook

import (
	"bytes"
	"net/http"
	"sync"
)

// Sizes of the buffers bodies are read into. A GitLab payload is a few KiB (a push carries at
// most 20 commits), so firstRead covers nearly every body in one allocation, and keptBuffer lets
// a pooled buffer serve those again while a rare big body's memory goes back to the GC.
const (
	firstRead  = 64 << 10
	keptBuffer = 1 << 20
)

// bodyPool keeps the buffers bodies are read into, so the intake's steady state reads into
// memory it already has. It is a field of the Handler, never shared between handlers.
type bodyPool struct{ p sync.Pool }

func (b *bodyPool) get() *bytes.Buffer {
	if buf, ok := b.p.Get().(*bytes.Buffer); ok {
		return buf
	}
	return new(bytes.Buffer)
}

func (b *bodyPool) put(buf *bytes.Buffer) {
	if buf.Cap() > keptBuffer {
		return
	}
	buf.Reset()
	b.p.Put(buf)
}

// readBody reads at most limit bytes of the body into buf and returns them; they are valid
// until buf is reused. Memory is committed as bytes arrive, never at what Content-Length
// claims: a client that announces 25 MiB and sends 100 bytes costs 100 bytes, not 25 MiB held
// until the read times out. The first capacity is the announced length up to firstRead, plus
// room for the read that sees EOF, so a usual body is read with no copy.
func readBody(buf *bytes.Buffer, w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	first := int64(firstRead)
	if r.ContentLength >= 0 {
		first = min(first, r.ContentLength)
	}
	buf.Grow(int(first) + bytes.MinRead)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
