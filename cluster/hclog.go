package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// slogHclog is an hclog.Logger that writes through a slog.Logger, so that
// hashicorp/raft's own lines come out in the node's format (text or JSON)
// with the node's attributes (node=ID) and a component attribute naming
// the raft logger ("raft", "raft-net", "raft-snap"). hclog's Trace maps to
// slog's Debug-4; hclog's level (RaftLogLevel) filters before slog's.
type slogHclog struct {
	log     *slog.Logger
	name    string
	level   *atomic.Int32 // an hclog.Level, shared by the loggers derived from this one
	implied []any
}

// newSlogHclog returns an hclog.Logger named name writing to l at level
// and above.
func newSlogHclog(l *slog.Logger, name string, level hclog.Level) hclog.Logger {
	lv := new(atomic.Int32)
	lv.Store(int32(level))
	return &slogHclog{log: l, name: name, level: lv}
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Trace:
		return slog.LevelDebug - 4
	case l == hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (h *slogHclog) enabled(l hclog.Level) bool {
	min := hclog.Level(h.level.Load())
	if l == hclog.NoLevel || l == hclog.Off || min == hclog.Off {
		return l == hclog.NoLevel && min != hclog.Off
	}
	return l >= min && h.log.Enabled(context.Background(), slogLevel(l))
}

// Log writes msg with args (hclog's alternating keys and values, the same
// convention as slog's).
func (h *slogHclog) Log(level hclog.Level, msg string, args ...any) {
	if !h.enabled(level) {
		return
	}
	attrs := make([]any, 0, 2+len(h.implied)+len(args))
	attrs = append(attrs, "component", h.name)
	attrs = appendArgs(attrs, h.implied)
	attrs = appendArgs(attrs, args)
	lv := slogLevel(level)
	if level == hclog.NoLevel {
		lv = slog.LevelInfo
	}
	h.log.Log(context.Background(), lv, msg, attrs...)
}

// reservedKeys are attribute keys of the node's lines that raft's own
// keys must not shadow: hashicorp/raft logs its *Raft as "node", which
// would hide node=ID (in JSON, the last duplicate key wins).
var reservedKeys = map[string]bool{"node": true, "component": true, slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, slog.SourceKey: true}

// appendArgs appends hclog's key/value args to attrs, renaming a reserved
// key k to raft_k.
func appendArgs(attrs, args []any) []any {
	for i, a := range args {
		if k, ok := a.(string); ok && i%2 == 0 && reservedKeys[k] {
			a = "raft_" + k
		}
		attrs = append(attrs, a)
	}
	return attrs
}

func (h *slogHclog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHclog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHclog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHclog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHclog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHclog) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *slogHclog) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *slogHclog) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *slogHclog) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *slogHclog) IsError() bool { return h.enabled(hclog.Error) }

func (h *slogHclog) ImpliedArgs() []any { return h.implied }

func (h *slogHclog) With(args ...any) hclog.Logger {
	c := *h
	c.implied = append(append([]any(nil), h.implied...), args...)
	return &c
}

func (h *slogHclog) Name() string { return h.name }

func (h *slogHclog) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *slogHclog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *slogHclog) SetLevel(l hclog.Level) { h.level.Store(int32(l)) }
func (h *slogHclog) GetLevel() hclog.Level  { return hclog.Level(h.level.Load()) }

func (h *slogHclog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each write as one line, at
// opts.ForceLevel, else the level its "[ERR]"-style prefix names when
// opts.InferLevels, else info.
func (h *slogHclog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return stdWriter{h: h, opts: *opts}
}

type stdWriter struct {
	h    *slogHclog
	opts hclog.StandardLoggerOptions
}

func (w stdWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	level := hclog.Info
	switch {
	case w.opts.ForceLevel != hclog.NoLevel:
		level = w.opts.ForceLevel
	case w.opts.InferLevels:
		for prefix, l := range map[string]hclog.Level{"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info, "[WARN]": hclog.Warn, "[ERR]": hclog.Error, "[ERROR]": hclog.Error} {
			if rest, ok := strings.CutPrefix(msg, prefix); ok {
				level, msg = l, strings.TrimSpace(rest)
				break
			}
		}
	}
	w.h.Log(level, msg)
	return len(p), nil
}
