package checker_test

import (
	"encoding/json"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
)

func TestVerdict_MarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		v    checker.Verdict
		json string
	}{
		{checker.Valid, "true"},
		{checker.Invalid, "false"},
		{checker.Unknown, `"unknown"`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.json {
			t.Fatalf("marshal %q = %s, %v; want %s", tc.v, b, err, tc.json)
		}
		var back checker.Verdict
		if err := json.Unmarshal(b, &back); err != nil || back != tc.v {
			t.Fatalf("unmarshal %s = %q, %v", b, back, err)
		}
	}
	var v checker.Verdict
	if err := json.Unmarshal([]byte(`"maybe"`), &v); err == nil {
		t.Fatal("unmarshal of a bad verdict succeeded")
	}
}

func TestOverall(t *testing.T) {
	V, I, U := checker.Valid, checker.Invalid, checker.Unknown
	for _, tc := range []struct {
		in   []checker.Verdict
		want checker.Verdict
	}{
		{nil, U},
		{[]checker.Verdict{V, V}, V},
		{[]checker.Verdict{V, U}, U},
		{[]checker.Verdict{U, I, V}, I},
		{[]checker.Verdict{V, I}, I},
	} {
		if got := checker.Overall(tc.in...); got != tc.want {
			t.Errorf("Overall(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestResult_MarshalJSON(t *testing.T) {
	b, err := json.Marshal(checker.Result{Name: "x", Valid: checker.Valid})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"x","valid":true,"anomalies":[],"stats":{}}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

func TestAnomaliesAreBounded(t *testing.T) {
	var evs []ev
	for i := range 50 {
		evs = append(evs, ev{2 * i, opBalances(i)}, ok(2*i+1, i, "balances", "v", 1, ""))
		evs[len(evs)-1].op.Values = []int64{1}
	}
	r := checker.Bank(hist(evs...), 100, 1)
	if r.Valid != checker.Invalid || len(r.Anomalies) != checker.MaxAnomalies+1 || r.Stats["anomalies"] != 50 {
		t.Fatalf("got %s with %d anomalies, stats %v", r.Valid, len(r.Anomalies), r.Stats)
	}
}
