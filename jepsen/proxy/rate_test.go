package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/jepsen/proxy"
)

func TestProxy_SetRate(t *testing.T) {
	t.Run("trickles, then releases when the limit is removed", func(t *testing.T) {
		srv := newServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		p := listen(t, srv.addr())
		if err := p.SetRate(100); err != nil {
			t.Fatal(err)
		}
		if got := p.Rate(); got != 100 {
			t.Errorf("Rate = %d, want 100", got)
		}
		c := dial(t, p)
		const size = 64 << 10
		write(t, c, strings.Repeat("x", size))
		// The first piece gets through...
		eventually(t, "first bytes forwarded", func() error {
			if n := p.Stats().BytesUp; n == 0 {
				return errors.New("nothing forwarded yet")
			}
			return nil
		})
		// ...but at 100 bytes/s, 64 KiB take ten minutes: well short of
		// all of it has arrived now.
		if n := p.Stats().BytesUp; n >= size {
			t.Fatalf("BytesUp = %d right after the first piece at 100 B/s, want < %d", n, size)
		}
		if err := p.SetRate(0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the rest forwarded once unlimited", func() error {
			if n := p.Stats().BytesUp; n != size {
				return fmt.Errorf("BytesUp = %d, want %d", n, size)
			}
			return nil
		})
	})

	t.Run("keeps bytes in order", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		if err := p.SetRate(50 << 10); err != nil {
			t.Fatal(err)
		}
		c := dial(t, p)
		var want strings.Builder
		for i := range 2000 {
			fmt.Fprintf(&want, "%05d,", i)
		}
		write(t, c, want.String())
		expect(t, c, want.String())
	})

	t.Run("reject cuts a trickling connection", func(t *testing.T) {
		srv := newServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		p := listen(t, srv.addr())
		if err := p.SetRate(10); err != nil {
			t.Fatal(err)
		}
		c := dial(t, p)
		write(t, c, strings.Repeat("y", 1000))
		setMode(t, p, proxy.Reject)
		expectCut(t, c)
	})

	t.Run("negative rate", func(t *testing.T) {
		p := listen(t, "127.0.0.1:1")
		if err := p.SetRate(-1); !errors.Is(err, proxy.ErrInvalidRate) {
			t.Errorf("SetRate(-1) = %v, want ErrInvalidRate", err)
		}
	})
}
