package hrflow

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulljobs/pulljobs/pkg/retry"
)

// DefaultBaseURL is the production API root, version included.
const DefaultBaseURL = "https://api.hrflow.ai/v1"

// DefaultCallTimeout bounds one HTTP attempt when Config.CallTimeout is zero.
const DefaultCallTimeout = 30 * time.Second

// Prefixes of the API secrets, one per permission: read and write, read
// only, write only.
const (
	SecretPrefixReadWrite = "ask_"
	SecretPrefixRead      = "askr_"
	SecretPrefixWrite     = "askw_"
)

const (
	// maxAnswer bounds the body of an answer the client reads; a listing
	// page of full jobs stays far below it.
	maxAnswer = 32 << 20
	// maxIdleConns is the number of idle connections the client's own
	// transport keeps to the API: enough for a few dozen concurrent workers
	// without opening a connection per call.
	maxIdleConns = 128
	// redacted replaces a secret wherever it could be shown.
	redacted = "[REDACTED]"
)

// Limiter paces the calls to the API. *rate.Limiter (golang.org/x/time/rate)
// satisfies it; the pipeline plugs in one shared by all replicas. Wait is
// called before every HTTP attempt, retries included, and must return early
// with an error when ctx ends. A Limiter that is also an Observer hears how
// every attempt went; one that is a Rater says its rate to Tally.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Config configures a Client. Formatting a Config with fmt (any verb) or
// log/slog never shows APISecret.
type Config struct {
	// APISecret is sent as X-API-KEY. Required. A secret that does not start
	// with ask_, askr_ or askw_ is accepted with a warning in the log: the
	// API, not the client, is the judge of its keys.
	APISecret string
	// APIUser is sent as X-USER-EMAIL. Required.
	APIUser string
	// BaseURL is the API root, version included; default DefaultBaseURL.
	// hrflowtest.BaseURL gives the emulator's.
	BaseURL string
	// Limiter, when not nil, is waited before every HTTP attempt, retries
	// included.
	Limiter Limiter
	// Observer, when not nil, hears how every HTTP attempt went; nil means
	// the Limiter, if it is an Observer. Set it to the limiter behind a
	// Limiter that wraps it (a fairshare.Gate).
	Observer Observer
	// HTTPClient sends the requests; nil means a client of its own that
	// keeps enough idle connections for concurrent workers. Its Timeout, if
	// any, applies on top of CallTimeout.
	HTTPClient *http.Client
	// CallTimeout bounds each HTTP attempt, from sending the request to
	// reading the whole answer; default DefaultCallTimeout. A whole call is
	// bounded by its context and by Retry.
	CallTimeout time.Duration
	// Retry says how often and how long a failing call is tried again; the
	// zero value means retry's defaults.
	Retry retry.Policy
	// ListLimit is the page size Jobs asks for; 0 means DefaultListLimit.
	// The client falls back to smaller pages when the API refuses it or
	// serves fewer (see Jobs).
	ListLimit int
	// Logger receives retries and warnings; nil discards them. Nothing the
	// client logs contains the secret.
	Logger *slog.Logger
}

// String describes the configuration with the secret redacted.
func (c Config) String() string {
	return fmt.Sprintf("hrflow.Config{APIUser: %q, APISecret: %s, BaseURL: %q, CallTimeout: %v, Limiter: %t, Observer: %t, Retry: %+v}",
		c.APIUser, redactSecret(c.APISecret), c.BaseURL, c.CallTimeout, c.Limiter != nil, c.Observer != nil, c.Retry)
}

// GoString is String: %#v must not show the secret either.
func (c Config) GoString() string { return c.String() }

// Format writes String for every verb, so that no verb (%d, %x, %+v…)
// reaches the secret through fmt's reflection.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogValue shows the configuration in log/slog with the secret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_user", c.APIUser),
		slog.String("api_secret", redactSecret(c.APISecret)),
		slog.String("base_url", c.BaseURL),
		slog.Duration("call_timeout", c.CallTimeout),
	)
}

// redactSecret shows only whether a secret is set and its permission prefix.
func redactSecret(s string) string {
	if s == "" {
		return `""`
	}
	for _, p := range []string{SecretPrefixRead, SecretPrefixWrite, SecretPrefixReadWrite} {
		if strings.HasPrefix(s, p) {
			return p + redacted
		}
	}
	return redacted
}

// Client calls the HrFlow.ai API. It is safe for concurrent use. Formatting
// a Client never shows its secret.
type Client struct {
	secret, user string
	base         string // BaseURL without a trailing slash
	basePath     string // its path ("/v1"), which APIError.Path starts with
	limiter      Limiter
	observer     Observer // nil: none
	http         *http.Client
	timeout      time.Duration
	policy       retry.Policy
	log          *slog.Logger
	refs         keyedMutex   // serialises Upsert per (board, reference)
	listLimit    atomic.Int64 // the page size Jobs asks for
}

// NewClient validates cfg and returns a client; it makes no network call.
// It refuses an empty or malformed secret or user, a base URL that is not
// absolute http(s), and a negative CallTimeout; it warns (Logger) about a
// secret without a known permission prefix.
func NewClient(cfg Config) (*Client, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.APISecret == "" {
		return nil, errors.New("hrflow: config: APISecret is required")
	}
	if !validHeaderValue(cfg.APISecret) {
		return nil, errors.New("hrflow: config: APISecret holds spaces or control characters")
	}
	if !strings.HasPrefix(cfg.APISecret, SecretPrefixReadWrite) &&
		!strings.HasPrefix(cfg.APISecret, SecretPrefixRead) &&
		!strings.HasPrefix(cfg.APISecret, SecretPrefixWrite) {
		log.Warn("hrflow: APISecret does not start with ask_, askr_ or askw_; the API may refuse it")
	}
	if cfg.APIUser == "" {
		return nil, errors.New("hrflow: config: APIUser is required")
	}
	if !validHeaderValue(cfg.APIUser) {
		return nil, fmt.Errorf("hrflow: config: APIUser %q holds spaces or control characters", cfg.APIUser)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("hrflow: config: BaseURL %q: want an absolute http(s) URL without query or credentials", base)
	}
	if cfg.CallTimeout < 0 {
		return nil, fmt.Errorf("hrflow: config: CallTimeout %v: want ≥ 0", cfg.CallTimeout)
	}
	if cfg.ListLimit < 0 {
		return nil, fmt.Errorf("hrflow: config: ListLimit %d: want ≥ 1, or 0 for %d", cfg.ListLimit, DefaultListLimit)
	}
	timeout := cfg.CallTimeout
	if timeout == 0 {
		timeout = DefaultCallTimeout
	}
	hc := cfg.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = maxIdleConns
		t.MaxIdleConnsPerHost = maxIdleConns
		hc = &http.Client{Transport: t}
	}
	c := &Client{
		secret:   cfg.APISecret,
		user:     cfg.APIUser,
		base:     strings.TrimRight(base, "/"),
		basePath: strings.TrimRight(u.Path, "/"),
		limiter:  cfg.Limiter,
		http:     hc,
		timeout:  timeout,
		policy:   cfg.Retry,
		log:      log,
	}
	c.listLimit.Store(int64(cmp.Or(cfg.ListLimit, DefaultListLimit)))
	if c.observer = cfg.Observer; c.observer == nil {
		c.observer, _ = cfg.Limiter.(Observer)
	}
	return c, nil
}

// validHeaderValue reports whether s can be sent as is in a header: visible
// ASCII or UTF-8, no spaces or control characters.
func validHeaderValue(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// String describes the client with the secret redacted.
func (c *Client) String() string {
	return fmt.Sprintf("hrflow.Client{APIUser: %q, APISecret: %s, BaseURL: %q}", c.user, redactSecret(c.secret), c.base)
}

// Format writes String for every verb.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogValue shows the client in log/slog with the secret redacted.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("api_user", c.user), slog.String("api_secret", redactSecret(c.secret)), slog.String("base_url", c.base))
}

// CloseIdleConnections closes the idle connections of the client's HTTP
// client, for a clean shutdown.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// envelope is every answer of the API; Data points to where its data is
// decoded.
type envelope struct {
	Code    flexInt         `json:"code"`
	Message string          `json:"message"`
	Data    any             `json:"data"`
	Meta    json.RawMessage `json:"meta"`
}

// errorEnvelope is the part of an error answer the client reads.
type errorEnvelope struct {
	Code    flexInt `json:"code"`
	Message string  `json:"message"`
}

// flexInt reads a JSON number or a numeric string; anything else is 0.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		*n = flexInt(f)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		fmt.Sscan(s, (*int)(n))
	}
	return nil
}

// call sends one call to the API, through the limiter, with retries, and
// decodes the "data" of its 2xx answer into a T, fresh at each attempt. It
// returns the answer's "meta" too. path is relative to the base URL
// ("/job/indexing"); body, when not nil, is sent as JSON.
func call[T any](ctx context.Context, c *Client, method, path string, query url.Values, body any) (T, json.RawMessage, error) {
	out, meta, _, err := callN[T](ctx, c, method, path, query, body)
	return out, meta, err
}

// callN is call, also returning the number of HTTP attempts made.
func callN[T any](ctx context.Context, c *Client, method, path string, query url.Values, body any) (T, json.RawMessage, int, error) {
	if body == nil {
		return send[T](ctx, c, method, path, query, nil)
	}
	pb := getBuf()
	defer putBuf(pb)
	b, err := AppendJSON(pb.AvailableBuffer(), body)
	if err != nil {
		var out T
		return out, nil, 0, fmt.Errorf("encode request: %w", err)
	}
	pb.Write(b) // keeps a buffer AppendJSON had to grow for the next call
	return send[T](ctx, c, method, path, query, pb.Bytes())
}

// send is callN with the body already encoded: payload, or none when nil.
func send[T any](ctx context.Context, c *Client, method, path string, query url.Values, payload []byte) (T, json.RawMessage, int, error) {
	var out T
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	urlPath := c.basePath + path
	var meta json.RawMessage
	attempt := 0
	err := retry.Do(ctx, c.policy, func(ctx context.Context) error {
		attempt++
		resp, buf, err := c.attempt(ctx, method, target, urlPath, payload)
		if err != nil {
			return err
		}
		defer putBuf(buf)
		var v T
		m, err := c.decode(resp, buf.Bytes(), method, urlPath, &v)
		if err != nil {
			return err
		}
		out, meta = v, m
		return nil
	}, func(err error, wait time.Duration) {
		c.log.Warn("hrflow: call failed, retrying",
			"method", method, "path", urlPath, "attempt", attempt, "wait", wait, "error", c.redact(err.Error()))
	})
	return out, meta, attempt, err
}

// attempt makes one HTTP attempt, bounded by the call time-out, and returns
// the answer with its whole body, in a buffer to give back with putBuf.
func (c *Client) attempt(ctx context.Context, method, target, urlPath string, payload []byte) (*http.Response, *bytes.Buffer, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, nil, fmt.Errorf("rate limiter: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("X-API-KEY", c.secret)
	req.Header.Set("X-USER-EMAIL", c.user)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	route := method + " " + strings.TrimPrefix(urlPath, c.basePath)
	sent := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(ctx, route, nil, time.Since(sent))
		return nil, nil, err
	}
	defer resp.Body.Close()
	buf := getBuf()
	if n := resp.ContentLength; n > 0 && n <= maxAnswer {
		buf.Grow(int(n) + 1) // +1: ReadFrom wants room to see EOF
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxAnswer+1))
	c.observe(ctx, route, resp, time.Since(sent))
	if err != nil {
		putBuf(buf)
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", method, urlPath, err)
	}
	if buf.Len() > maxAnswer {
		putBuf(buf)
		return nil, nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, urlPath, maxAnswer)
	}
	return resp, buf, nil
}

// bufPool recycles the buffers of request and answer bodies; decoding
// copies what it keeps.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf bounds the buffers kept for reuse.
const maxPooledBuf = 1 << 20

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

// decode reads an answer: the data of a success into dst, and its meta; or
// an *APIError.
func (c *Client) decode(resp *http.Response, data []byte, method, path string, dst any) (json.RawMessage, error) {
	// apiErr builds the error; fromAPI says whether msg is the API's own
	// message, which classify may read (a gateway's 404 page is no
	// "job not found").
	apiErr := func(status int, code int, msg string, fromAPI bool) *APIError {
		e := &APIError{Status: status, Code: code, Message: c.redact(msg), Method: method, Path: path}
		if retry.IsRetryableStatus(status) {
			e.RetryAfterDelay = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		if fromAPI {
			e.kind = classify(status, e.Message)
		} else {
			e.kind = classify(status, "")
		}
		return e
	}
	failed := func(status int, ee errorEnvelope) *APIError {
		code := int(ee.Code)
		if code == 0 {
			code = status
		}
		msg := ee.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		return apiErr(status, code, msg, true)
	}
	ct := resp.Header.Get("Content-Type")
	if !isJSON(ct) {
		return nil, apiErr(resp.StatusCode, resp.StatusCode, nonJSONMessage(ct, data), false)
	}
	status := resp.StatusCode
	if status < 200 || status > 299 {
		var ee errorEnvelope
		if err := json.Unmarshal(data, &ee); err != nil {
			return nil, apiErr(status, status, fmt.Sprintf("malformed JSON answer: %v", err), false)
		}
		return nil, failed(status, ee)
	}
	if it, ok := dst.(**listItem); ok {
		if meta, ok := decodeItem(data, it); ok {
			return meta, nil
		}
	}
	env := envelope{Data: dst}
	err := json.Unmarshal(data, &env)
	if err == nil && env.Code < 400 {
		return env.Meta, nil
	}
	// An error code in a 2xx answer (the envelope knows better than HTTP),
	// or data of an unexpected shape.
	var ee errorEnvelope
	if json.Unmarshal(data, &ee) != nil {
		return nil, apiErr(status, status, fmt.Sprintf("malformed JSON answer: %v", err), false)
	}
	if ee.Code >= 400 {
		return nil, failed(int(ee.Code), ee)
	}
	return nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
}

// isJSON accepts application/json with or without parameters (a charset),
// and +json types.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// maxSnippet bounds the part of a non-JSON answer quoted in an error.
const maxSnippet = 120

// nonJSONMessage describes an answer that is not JSON, such as a gateway's
// HTML page, by its title or its first characters.
func nonJSONMessage(contentType string, data []byte) string {
	if contentType == "" {
		contentType = "no Content-Type"
	}
	text := string(data)
	lower := strings.ToLower(text)
	if i := strings.Index(lower, "<title>"); i >= 0 {
		if j := strings.Index(lower[i:], "</title>"); j >= 0 {
			text = text[i+len("<title>") : i+j]
		}
	} else {
		text = tagRE.ReplaceAllString(text, " ")
	}
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > maxSnippet {
		text = string(r[:maxSnippet]) + "…"
	}
	if text == "" {
		return fmt.Sprintf("non-JSON answer (%s), empty body", contentType)
	}
	return fmt.Sprintf("non-JSON answer (%s): %s", contentType, text)
}

// redact removes the client's secret, and anything shaped like a secret, from
// a text that came from the API or the network.
func (c *Client) redact(s string) string {
	if c.secret != "" {
		s = strings.ReplaceAll(s, c.secret, redactSecret(c.secret))
	}
	return secretRE.ReplaceAllStringFunc(s, func(m string) string {
		return m[:strings.IndexByte(m, '_')+1] + redacted
	})
}
