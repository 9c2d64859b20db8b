package main

import (
	"context"
	"testing"
	"time"
)

// The same nearest-rank cases as graft's bench.TestPercentile, so both
// sides of the comparison compute percentiles alike.
func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{
		{-1, 1}, {0, 1}, {0.5, 1}, {1, 1}, {1.01, 2}, {50, 50}, {90, 90}, {99, 99}, {99.9, 100}, {100, 100}, {150, 100},
	} {
		if got := percentile(s, tt.p); got != tt.want*time.Millisecond {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", tt.p, got, tt.want*time.Millisecond)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(empty) = %v", got)
	}
}

func TestClosedLoop(t *testing.T) {
	res, err := closedLoop(context.Background(), 3, 10*time.Millisecond, 50*time.Millisecond,
		func(_ context.Context, _ int, _ uint64, val []byte) error {
			if len(val) != 8192 {
				t.Errorf("value of %d bytes, want 8192", len(val))
			}
			time.Sleep(time.Millisecond)
			return nil
		}, 8192)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients != 3 || res.Commits == 0 || res.OpsPerSec <= 0 || len(res.CDF) != len(cdfPercents) || len(cdfPercents) != 104 {
		t.Errorf("closedLoop = %+v", res)
	}
	if res.CDF[50][1] != res.P50MS || res.CDF[0][1] != res.MinMS || res.CDF[103][1] != res.MaxMS {
		t.Errorf("CDF disagrees with the summary: %v %v %v vs %+v", res.CDF[0], res.CDF[50], res.CDF[103], res)
	}
}
