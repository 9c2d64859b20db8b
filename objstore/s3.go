package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// defaultRegion is the signing region when neither the URL nor the SDK's
// shared configuration names one.
const defaultRegion = "us-east-1"

// s3Store keeps key k as object prefix/k in bucket.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or "a/b/" (with the trailing slash)
	cfg    Config
	// metrics count timeouts, retries and hedges; latency keeps recent GET
	// first-byte latencies for the hedge delay.
	metrics *s3Metrics
	latency latencies
	// closeIdle closes the idle connections of the HTTP client Open made
	// (nil when the caller passed Config.HTTPClient).
	closeIdle func()
	closed    atomic.Bool
}

// s3Params are the s3:// URL's query parameters.
type s3Params struct {
	endpoint, region                   string
	pathStyle                          *bool
	accessKey, secretKey, sessionToken string
}

// parseS3Params reads the s3:// URL's query parameters, setting the
// Config knobs it names in cfg.
func parseS3Params(q url.Values, cfg *Config) (s3Params, error) {
	var p s3Params
	for name, vals := range q {
		if len(vals) != 1 {
			return p, fmt.Errorf("%w: s3 url parameter %q given %d times", ErrInvalidURL, name, len(vals))
		}
		v := vals[0]
		duration := func(dst *time.Duration) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%w: s3 %s %q is not a duration (like 500ms or 10s)", ErrInvalidURL, name, v)
			}
			*dst = d
			return nil
		}
		var err error
		switch name {
		case "max_attempts":
			n, perr := strconv.Atoi(v)
			if perr != nil {
				return p, fmt.Errorf("%w: s3 max_attempts %q is not an integer", ErrInvalidURL, v)
			}
			cfg.MaxAttempts = n
		case "max_backoff":
			err = duration(&cfg.MaxBackoff)
		case "first_byte_timeout":
			err = duration(&cfg.FirstByteTimeout)
		case "attempt_timeout":
			err = duration(&cfg.AttemptTimeout)
		case "min_throughput":
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				return p, fmt.Errorf("%w: s3 min_throughput %q is not an integer (bytes per second)", ErrInvalidURL, v)
			}
			cfg.MinThroughput = n
		case "hedge_after":
			err = duration(&cfg.HedgeAfter)
		case "hedge_max":
			err = duration(&cfg.HedgeMax)
		case "hedge_quantile":
			f, perr := strconv.ParseFloat(v, 64)
			if perr != nil {
				return p, fmt.Errorf("%w: s3 hedge_quantile %q is not a number", ErrInvalidURL, v)
			}
			cfg.HedgeQuantile = f
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
				return p, fmt.Errorf("%w: s3 endpoint %q is not an http(s)://host[:port] URL", ErrInvalidURL, v)
			}
			p.endpoint = v
		case "region":
			p.region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, fmt.Errorf("%w: s3 path_style %q is not a boolean", ErrInvalidURL, v)
			}
			p.pathStyle = &b
		case "access_key":
			p.accessKey = v
		case "secret_key":
			p.secretKey = v
		case "session_token":
			p.sessionToken = v
		default:
			return p, fmt.Errorf("%w: unknown s3 url parameter %q", ErrInvalidURL, name)
		}
		if err != nil {
			return p, err
		}
	}
	if (p.accessKey == "") != (p.secretKey == "") {
		return p, fmt.Errorf("%w: s3 access_key and secret_key go together", ErrInvalidURL)
	}
	if p.sessionToken != "" && p.accessKey == "" {
		return p, fmt.Errorf("%w: s3 session_token needs access_key and secret_key", ErrInvalidURL)
	}
	return p, nil
}

func openS3(ctx context.Context, u *url.URL, cfg Config) (Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("%w: s3 url needs a bucket (s3://bucket/prefix)", ErrInvalidURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: s3 url takes credentials as access_key and secret_key parameters, not user info", ErrInvalidURL)
	}
	prefix, err := trimPrefix(u.Path)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		prefix += "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// The parse error quotes the query, which may hold a secret key.
		return nil, fmt.Errorf("%w: malformed s3 url query", ErrInvalidURL)
	}
	p, err := parseS3Params(q, &cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	metrics, err := newS3Metrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("open s3 store: register metrics: %w", err)
	}
	s := &s3Store{bucket: u.Host, prefix: prefix, cfg: cfg, metrics: metrics, latency: latencies{q: cfg.HedgeQuantile}}
	var loadOpts []func(*config.LoadOptions) error
	if p.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(p.region))
	}
	if p.accessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(p.accessKey, p.secretKey, p.sessionToken)))
	}
	// The SDK's client, with a pool large enough for concurrent uploads. It
	// must be a BuildableClient while the configuration loads, which
	// applies AWS_CA_BUNDLE to it and fails on any other client; a
	// Config.HTTPClient is therefore set on the S3 client afterwards.
	loadOpts = append(loadOpts, config.WithHTTPClient(awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 64 })))
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open s3 store: load aws config: %w", err)
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
	} else if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		// An *http.Client of our own over the transport the SDK built
		// (AWS_CA_BUNDLE applied), so Close and an attempt timeout can close
		// its idle connections: the SDK's Freeze hides the transport behind
		// a wrapper without CloseIdleConnections.
		tr := bc.GetTransport()
		awsCfg.HTTPClient = &http.Client{Transport: tr, CheckRedirect: limitedRedirect}
		s.closeIdle = tr.CloseIdleConnections
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	pathStyle := p.endpoint != ""
	if p.pathStyle != nil {
		pathStyle = *p.pathStyle
	}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if p.endpoint != "" {
			o.BaseEndpoint = aws.String(p.endpoint)
		}
		o.UsePathStyle = pathStyle
		// Checksums only where S3 requires them. With the SDK's default
		// (when supported) a PUT carries x-amz-checksum-crc32 (as an
		// aws-chunked trailer over HTTPS, which some S3-compatible servers
		// reject); gofakes3 stores it and echoes the whole object's value
		// on ranged GETs, so validating responses fails every range read.
		// TLS and the segment format's own CRC-32Cs cover integrity.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			so.MaxBackoff = cfg.MaxBackoff
			so.Retryables = append([]retry.IsErrorRetryable{isRetryableAttemptError}, so.Retryables...)
		})
		// One deadline per attempt: inside the retry loop.
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(attemptDeadline{s}, "Retry", middleware.After)
		})
	})
	return s, nil
}

// limitedRedirect follows only 307 and 308 redirects, which keep the
// method and body, as the SDK's own client does; any other 3xx reaches the
// SDK as an error response (S3 answers a wrong region with a 301 without a
// Location).
func limitedRedirect(r *http.Request, via []*http.Request) error {
	switch r.Response.StatusCode {
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if len(via) > 0 && via[len(via)-1].URL.Host != r.URL.Host {
			// Like Authorization, the session token stays with its host.
			r.Header.Del("X-Amz-Security-Token")
		}
		return nil
	}
	return http.ErrUseLastResponse
}

func (s *s3Store) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return ValidateKey(key)
}

// s3Error is what an S3 failure says about itself.
func s3Error(err error) (status int, code string) {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return status, code
}

func isNotFound(err error) bool {
	status, code := s3Error(err)
	switch code {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false // a configuration error, not a missing object
	}
	return status == http.StatusNotFound
}

func isRange(err error) bool {
	status, code := s3Error(err)
	return code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable
}

func isExists(err error) bool {
	status, code := s3Error(err)
	return code == "PreconditionFailed" || code == "ConditionalRequestConflict" ||
		status == http.StatusPreconditionFailed || status == http.StatusConflict
}

func (s *s3Store) Put(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.put(ctx, key, data, false); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (s *s3Store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	err := s.put(ctx, key, data, true)
	if err != nil && isExists(err) {
		return fmt.Errorf("put %s if absent: %w", key, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	return nil
}

func (s *s3Store) put(ctx context.Context, key string, data []byte, ifAbsent bool) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
		// A bytes.Reader is seekable: the SDK rewinds it to retry.
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	}
	op := opPut
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
		op = opPutIfAbsent
	}
	_, err := s.client.PutObject(withCall(ctx, &callState{op: op, reqBytes: int64(len(data))}), in)
	return err
}

func (s *s3Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	got, err := s.getObject(ctx, opGet, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	}, true)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return got.data, nil
}

// gotObject is a GetObject's response, body read.
type gotObject struct {
	data   []byte
	ranged bool // the response had a Content-Range
}

// getObject sends a GetObject and reads its body, hedged if hedge is set.
func (s *s3Store) getObject(ctx context.Context, op string, in *s3.GetObjectInput, hedge bool) (gotObject, error) {
	get := func(ctx context.Context) (gotObject, error) {
		in := *in // each hedged leg sends its own copy
		out, err := s.client.GetObject(ctx, &in)
		if err != nil {
			return gotObject{}, err
		}
		data, err := readBody(out.Body, aws.ToInt64(out.ContentLength))
		if err != nil {
			return gotObject{}, fmt.Errorf("read body: %w", err)
		}
		return gotObject{data: data, ranged: out.ContentRange != nil}, nil
	}
	if !hedge {
		return get(withCall(ctx, &callState{op: op}))
	}
	return hedged(ctx, s, op, get)
}

// readBody reads and closes an object body, preallocating its announced
// length (-1 or 0 when unknown).
func readBody(body io.ReadCloser, length int64) ([]byte, error) {
	defer body.Close()
	if b, ok := body.(*bufferedBody); ok {
		return b.data, nil // read by attemptDeadline
	}
	if length <= 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (s *s3Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrRange)
	}
	if n == 0 {
		// HTTP cannot ask for zero bytes; check the object instead.
		return s.emptyRange(ctx, key, off)
	}
	got, err := s.getObject(ctx, opGetRange, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	}, n <= s.cfg.HedgeMaxBytes)
	if err != nil {
		switch {
		case isNotFound(err):
			return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrNotFound)
		case isRange(err):
			return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrRange)
		}
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	data := got.data
	if !got.ranged && int64(len(data)) > n {
		// A server that ignores Range sends the whole object (200).
		if off+n > int64(len(data)) {
			return nil, fmt.Errorf("get %s [%d, +%d) of %d bytes: %w", key, off, n, len(data), ErrRange)
		}
		return data[off : off+n : off+n], nil
	}
	if int64(len(data)) != n {
		// S3 answers a range that runs past the end with the bytes up to
		// the end.
		return nil, fmt.Errorf("get %s [%d, +%d): got %d bytes: %w", key, off, n, len(data), ErrRange)
	}
	return data, nil
}

func (s *s3Store) emptyRange(ctx context.Context, key string, off int64) ([]byte, error) {
	out, err := s.client.HeadObject(withCall(ctx, &callState{op: opHead}), &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s [%d, +0): %w", key, off, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s [%d, +0): %w", key, off, err)
	}
	if size := aws.ToInt64(out.ContentLength); off > size {
		return nil, fmt.Errorf("get %s [%d, +0) of %d bytes: %w", key, off, size, ErrRange)
	}
	return []byte{}, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("list %s: %w", prefix, ErrClosed)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.prefix + prefix),
		MaxKeys: aws.Int32(int32(s.cfg.ListPageSize)),
	})
	var out []ObjectInfo
	for pages.HasMorePages() {
		page, err := pages.NextPage(withCall(ctx, &callState{op: opList}))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || !strings.HasPrefix(k, prefix) || ValidateKey(k) != nil {
				continue // not one of ours (a "dir/" marker, a foreign key)
			}
			out = append(out, ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	// S3 sorts by UTF-8 bytes already; S3-compatible servers may not.
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	_, err := s.client.DeleteObject(withCall(ctx, &callState{op: opDelete}), &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (s *s3Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.closeIdle != nil {
		s.closeIdle()
	}
	return nil
}

// ListAfter implements RangeLister with one ListObjectsV2 request
// (StartAfter, MaxKeys). Keys of other shapes under the prefix are skipped,
// so fewer than limit may come back even when more exist.
func (s *s3Store) ListAfter(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("list %s: %w", prefix, ErrClosed)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.prefix + prefix),
		MaxKeys: aws.Int32(int32(min(limit, 1000))),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.prefix + startAfter)
	}
	page, err := s.client.ListObjectsV2(withCall(ctx, &callState{op: opList}), in)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var out []ObjectInfo
	for _, o := range page.Contents {
		k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
		if !ok || !strings.HasPrefix(k, prefix) || k <= startAfter || ValidateKey(k) != nil {
			continue
		}
		out = append(out, ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
