package objstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/objstore"
)

func TestOpen_URLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, raw := range []string{
		"mem://",
		"mem://anything",
		"file://" + dir,
		"file://" + dir + "/nested/prefix",
		"file://localhost" + dir,
		"s3://bucket",
		"s3://bucket/a/prefix/",
		"s3://bucket/p?endpoint=http://127.0.0.1:7300&region=eu-west-1&path_style=false",
		"s3://bucket/p?endpoint=https://s3.example.com&access_key=AK&secret_key=SK&session_token=T",
		"s3://bucket/p?max_attempts=2&max_backoff=100ms&first_byte_timeout=2s&attempt_timeout=5s&min_throughput=100000",
		"s3://bucket/p?hedge_after=0",
		"s3://bucket/p?hedge_after=10ms&hedge_max=200ms&hedge_quantile=0.99",
	} {
		s, err := objstore.Open(t.Context(), raw)
		if err != nil {
			t.Errorf("Open(%q): %v", raw, err)
			continue
		}
		_ = s.Close()
	}
}

func TestOpen_InvalidURLs(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"",
		"/just/a/path",
		"gs://bucket/p",
		"file://relative/dir",
		"file:relative",
		"file://otherhost/abs",
		"file:///abs?x=1",
		"s3:///no-bucket",
		"s3://user:pass@bucket/p",
		"s3://bucket/a//b",
		"s3://bucket/../up",
		"s3://bucket/p?endpoint=ftp://host",
		"s3://bucket/p?endpoint=127.0.0.1:7300",
		"s3://bucket/p?path_style=maybe",
		"s3://bucket/p?access_key=AK",
		"s3://bucket/p?session_token=T",
		"s3://bucket/p?region=a&region=b",
		"s3://bucket/p?acess_key=typo",
		"s3://bucket/p?attempt_timeout=fast",
		"s3://bucket/p?attempt_timeout=0s",
		"s3://bucket/p?first_byte_timeout=-1s",
		"s3://bucket/p?min_throughput=1MiB",
		"s3://bucket/p?min_throughput=0",
		"s3://bucket/p?max_attempts=0",
		"s3://bucket/p?hedge_after=2s&hedge_max=1s",
		"s3://bucket/p?hedge_quantile=1.5",
		"%zz",
	} {
		if s, err := objstore.Open(t.Context(), raw); !errors.Is(err, objstore.ErrInvalidURL) {
			t.Errorf("Open(%q) = %v, want ErrInvalidURL", raw, err)
			if s != nil {
				_ = s.Close()
			}
		}
	}
}

func TestOpen_ErrorHidesSecret(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"s3://bucket/p?secret_key=TOPSECRET&access_key=AK&bogus=1",
		"s3://bucket/p?secret_key=TOPSECRET&access_key=AK&x=%zz",
	} {
		_, err := objstore.Open(t.Context(), raw)
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("Open error %v leaks the secret key", err)
		}
	}
}

func TestOpen_InvalidConfig(t *testing.T) {
	t.Parallel()
	if _, err := objstore.Open(t.Context(), "mem://", objstore.WithMaxAttempts(0)); err == nil {
		t.Fatal("Open with MaxAttempts 0 succeeded")
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	def := objstore.DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for name, mut := range map[string]func(*objstore.Config){
		"zero attempts":      func(c *objstore.Config) { c.MaxAttempts = 0 },
		"negative backoff":   func(c *objstore.Config) { c.MaxBackoff = -1 },
		"zero page size":     func(c *objstore.Config) { c.ListPageSize = 0 },
		"page size over max": func(c *objstore.Config) { c.ListPageSize = 1001 },
		"zero first byte":    func(c *objstore.Config) { c.FirstByteTimeout = 0 },
		"zero attempt":       func(c *objstore.Config) { c.AttemptTimeout = 0 },
		"zero throughput":    func(c *objstore.Config) { c.MinThroughput = 0 },
		"negative hedge":     func(c *objstore.Config) { c.HedgeAfter = -1 },
		"hedge max below":    func(c *objstore.Config) { c.HedgeMax = c.HedgeAfter - 1 },
		"zero quantile":      func(c *objstore.Config) { c.HedgeQuantile = 0 },
		"negative hedge max": func(c *objstore.Config) { c.HedgeMaxBytes = -1 },
	} {
		c := objstore.DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"k", true},
		{"volumes/v1/segments/s1", true},
		{".hidden/..dots/a.b", true},
		{"ünï/日本", true},
		{strings.Repeat("a", objstore.MaxSegmentLen), true},
		{strings.Repeat("a/", objstore.MaxKeyLen/2-1) + "ab", true},
		{"", false},
		{"/abs", false},
		{"dir/", false},
		{"a//b", false},
		{".", false},
		{"a/../b", false},
		{"a/./b", false},
		{"new\nline", false},
		{"del\x7f", false},
		{"\xc3", false},
		{strings.Repeat("a", objstore.MaxSegmentLen+1), false},
		{strings.Repeat("a/", objstore.MaxKeyLen/2) + "a", false},
	} {
		err := objstore.ValidateKey(tc.key)
		if tc.ok && err != nil {
			t.Errorf("ValidateKey(%.40q) = %v, want nil", tc.key, err)
		}
		if !tc.ok && !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidateKey(%.40q) = %v, want ErrInvalidKey", tc.key, err)
		}
	}
}
