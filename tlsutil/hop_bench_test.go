package tlsutil_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/tlsutil"
)

// BenchmarkHop measures one request/answer over loopback TCP, as a Raft
// AppendEntries of a 16-page commit does: the sender writes SIZE bytes in
// one buffered flush, the receiver reads them all and answers 16 bytes.
// plain is bare TCP; tls is the peer link (mutual TLS, ServerConfig(true)
// and ClientConfig); tls-coalesced sends with ClientCoalesced. The
// difference is what TLS adds to one hop.
func BenchmarkHop(b *testing.B) {
	f, _, err := tlsutil.DevFiles(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, mode := range []string{"plain", "tls", "tls-coalesced"} {
			b.Run(mode+"/"+byteSize(size), func(b *testing.B) {
				benchHop(b, h, mode, size)
			})
		}
	}
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func byteSize(n int) string { return strconv.Itoa(n>>10) + "KiB" }

func benchHop(b *testing.B, h *tlsutil.Holder, mode string, size int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	if mode != "plain" {
		ln = tls.NewListener(ln, h.ServerConfig(true))
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		r := bufio.NewReaderSize(c, 256<<10)
		buf := make([]byte, size)
		ack := make([]byte, 16)
		for {
			if _, err := io.ReadFull(r, buf); err != nil {
				done <- nil
				return
			}
			if _, err := c.Write(ack); err != nil {
				done <- err
				return
			}
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	raw.(*net.TCPConn).SetNoDelay(true)
	var c net.Conn = raw
	switch mode {
	case "tls":
		tc := tls.Client(raw, h.ClientConfig("127.0.0.1"))
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		c = tc
	case "tls-coalesced":
		tc := tlsutil.ClientCoalesced(raw, h.ClientConfig("127.0.0.1"))
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		c = tc
	}
	w := bufio.NewWriterSize(c, 256<<10)
	msg := make([]byte, size)
	ack := make([]byte, 16)
	b.SetBytes(int64(size))
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time of both ends (this process), robust to a busy machine
	// where ns/op mostly measures waiting for a core.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHTTPHop is BenchmarkHop for the client link: an HTTP/1.1 POST
// of 64 KiB answered with 16 bytes (the client's default transport and a
// node's server config), over plaintext and over TLS. (Coalescing the
// client's records as the Raft link does measured no gain here.)
func BenchmarkHTTPHop(b *testing.B) {
	f, _, err := tlsutil.DevFiles(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := tlsutil.LoadPool(f.CA)
	if err != nil {
		b.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(make([]byte, 16))
	})
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) {
			srv := httptest.NewUnstartedServer(handler)
			tr := &http.Transport{}
			url := "http://"
			if mode != "plain" {
				srv.TLS = h.ServerConfig(false)
				srv.StartTLS()
				url = "https://"
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			} else {
				srv.Start()
			}
			defer srv.Close()
			defer tr.CloseIdleConnections()
			url += srv.Listener.Addr().String()
			hc := &http.Client{Transport: tr}
			body := make([]byte, 64<<10)
			post := func() {
				resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			post()
			b.SetBytes(int64(len(body)))
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				post()
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
