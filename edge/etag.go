package edge

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/zeebo/blake3"
)

// withETag gives the immutable answers of GET requests (Connect's GET
// form of ReadPages at a fixed LSN) a strong ETag, the BLAKE3 hash of the
// representation (content type and body; the edge never compresses), and
// answers 304 Not Modified to an If-None-Match naming it. Everything else
// passes through unbuffered.
func withETag(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		h := w.Header()
		for k, v := range rec.header {
			h[k] = v
		}
		if cc := rec.header.Get("Cache-Control"); rec.status == http.StatusOK && (cc == immutableCacheControl(false) || cc == immutableCacheControl(true)) {
			sum := blake3.New()
			sum.WriteString(rec.header.Get("Content-Type"))
			sum.Write([]byte{0})
			sum.Write(rec.body.Bytes())
			etag := `"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
			h.Set("ETag", etag)
			if matchETag(r.Header.Get("If-None-Match"), etag) {
				h.Del("Content-Length")
				h.Del("Content-Type")
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// matchETag reports whether an If-None-Match header names etag (or *).
func matchETag(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/") // If-None-Match compares weakly
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// recorder buffers a response.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
