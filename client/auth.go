package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
)

// bearer sets the Authorization header of calls that have none.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Header().Get("Authorization") == "" {
			req.Header().Set("Authorization", string(b))
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient sets the header at the first Send: connect-go merges
// the request's own headers into the conn after the interceptors ran.
func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		return &bearerConn{StreamingClientConn: next(ctx, spec), value: string(b)}
	}
}

type bearerConn struct {
	connect.StreamingClientConn
	value string
}

func (c *bearerConn) Send(m any) error {
	if c.RequestHeader().Get("Authorization") == "" {
		c.RequestHeader().Set("Authorization", c.value)
	}
	return c.StreamingClientConn.Send(m)
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// ErrPlaintextToTLS means an http:// endpoint is served over TLS.
var ErrPlaintextToTLS = errors.New("client: the server speaks TLS: use an https:// endpoint (and --ca if its CA is not a system root)")

// hintPlaintext turns the answer of a TLS server to a plaintext request
// (Go's "400 Bad Request" to "Client sent an HTTP request to an HTTPS
// server", or TLS bytes read as HTTP) into an error that says what to do.
func hintPlaintext(endpoint string, err error) error {
	if err == nil || !strings.HasPrefix(endpoint, "http://") {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "400 Bad Request") || strings.Contains(msg, "malformed HTTP response") {
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%w: %s", ErrPlaintextToTLS, endpoint))
	}
	return err
}
