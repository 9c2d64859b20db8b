package fakes3

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// FaultPath is the path of the fault-injection endpoint a Server serves
// once SetFaultAdmin(true) was called (`graft s3 --fault-admin`): GET
// returns FaultStats as JSON, PUT sets Faults from a JSON body. Bucket
// names cannot start with '_', so the path never shadows a bucket.
const FaultPath = "/_graft/faults"

// Faults make a Server answer a share of its requests with an S3 error
// instead of serving them, as an overloaded or failing S3 does: 500
// InternalError or 503 SlowDown. The zero value injects nothing.
type Faults struct {
	// Rate is the share of matching requests answered with Status, in
	// [0, 1]. 0 turns injection off.
	Rate float64 `json:"rate"`
	// Status is 500 (InternalError) or 503 (SlowDown). Required when Rate
	// is above 0.
	Status int `json:"status,omitempty"`
	// Match, when set, limits injection to requests whose URL path
	// contains it, such as "/segments/": S3 throttles per key prefix.
	Match string `json:"match,omitempty"`
}

// Validate checks the fields' ranges.
func (f Faults) Validate() error {
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("%w: rate %v not in [0, 1]", ErrInvalidFaults, f.Rate)
	}
	if f.Rate > 0 && f.Status != http.StatusInternalServerError && f.Status != http.StatusServiceUnavailable {
		return fmt.Errorf("%w: status %d, want 500 or 503", ErrInvalidFaults, f.Status)
	}
	return nil
}

// FaultStats is the current Faults and what they did since the server
// started.
type FaultStats struct {
	Faults
	// Requests is the number of S3 requests the server received (the
	// fault endpoint's own excluded).
	Requests int64 `json:"requests"`
	// Injected is the number of requests answered with an injected error.
	Injected int64 `json:"injected"`
}

// faultState is a Server's fault injection.
type faultState struct {
	admin              atomic.Bool
	mu                 sync.Mutex
	f                  Faults
	requests, injected atomic.Int64
}

// SetFaultAdmin turns the fault endpoint (FaultPath) on or off. Off, the
// path is handed to the S3 API like any other. Default off.
func (s *Server) SetFaultAdmin(on bool) { s.faults.admin.Store(on) }

// SetFaults replaces the server's fault injection.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.mu.Lock()
	s.faults.f = f
	s.faults.mu.Unlock()
	if f.Rate > 0 {
		s.log.Warn("s3 fault injection on", "rate", f.Rate, "status", f.Status, "match", f.Match)
	} else {
		s.log.Info("s3 fault injection off")
	}
	return nil
}

// FaultStats returns the current faults and their counters.
func (s *Server) FaultStats() FaultStats {
	s.faults.mu.Lock()
	f := s.faults.f
	s.faults.mu.Unlock()
	return FaultStats{Faults: f, Requests: s.faults.requests.Load(), Injected: s.faults.injected.Load()}
}

// injectFaults serves the fault endpoint and answers the requests the
// current Faults pick with an S3 error; it hands the others to h.
func (s *Server) injectFaults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == FaultPath && s.faults.admin.Load() {
			s.serveFaultAdmin(w, r)
			return
		}
		s.faults.requests.Add(1)
		s.faults.mu.Lock()
		f := s.faults.f
		s.faults.mu.Unlock()
		if f.Rate == 0 || (f.Match != "" && !strings.Contains(r.URL.Path, f.Match)) || rand.Float64() >= f.Rate {
			h.ServeHTTP(w, r)
			return
		}
		n := s.faults.injected.Add(1)
		writeS3Error(w, r, f.Status, n)
	})
}

// s3Error is the body of an S3 error response.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, r *http.Request, status int, n int64) {
	e := s3Error{Code: "InternalError", Message: "We encountered an internal error. Please try again. (injected by graft s3)"}
	if status == http.StatusServiceUnavailable {
		e.Code, e.Message = "SlowDown", "Please reduce your request rate. (injected by graft s3)"
	}
	e.Resource, e.RequestID = r.URL.Path, fmt.Sprintf("graft-fault-%d", n)
	// Leave the request body unread: a failing S3 answers early too, and
	// net/http discards a small body or closes the connection.
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", e.RequestID)
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(e)
}

func (s *Server) serveFaultAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut, http.MethodPost:
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "decode faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetFaults(f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.FaultStats())
}
