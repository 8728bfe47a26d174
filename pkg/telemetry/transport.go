package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of this package's instruments.
const meterName = "github.com/pulljobs/pulljobs/pkg/telemetry"

// Label values of Transport's instruments that are not a route or a code.
const (
	// RouteOther is the route of a request that matches no route template.
	RouteOther = "other"
	// CodeError is the code of a call that got no HTTP answer: a refused or
	// reset connection, a time-out, a cancellation.
	CodeError = "error"
)

// durationBuckets are the latency histogram's bounds in seconds: an API
// call takes from a few milliseconds to the clients' 30 s call time-out.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

var (
	apiKey   = attribute.Key("api")
	routeKey = attribute.Key("route")
	codeKey  = attribute.Key("code")
)

// Transport is an http.RoundTripper that counts and times the calls of one
// API's client through the global MeterProvider:
//
//	pulljobs_http_client_requests_total{api,route,code}
//	pulljobs_http_client_request_duration_seconds{api,route} (histogram)
//
// route is the first of the route templates that matches the request, or
// RouteOther, so that the label's values stay a fixed set whatever the
// URLs hold; code is the status code, or CodeError when no answer came.
// The duration runs to the response's headers, as RoundTrip does.
type Transport struct {
	base     http.RoundTripper
	routes   []*route
	other    *route
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

// route is a parsed template such as "GET /offres/{id}", with the label
// sets of its measurements, made once: a call records without allocating.
type route struct {
	label    string
	method   string
	segments []string // "" stands for a {name} segment
	api      attribute.KeyValue
	timed    metric.MeasurementOption // {api, route}
	byCode   sync.Map                 // status (int, noAnswer) → metric.MeasurementOption {api, route, code}
}

func newRoute(api attribute.KeyValue, label string) *route {
	r := &route{label: label, api: api}
	r.timed = metric.WithAttributeSet(attribute.NewSet(api, routeKey.String(label)))
	return r
}

// noAnswer is the status of a call that got no HTTP answer.
const noAnswer = -1

// counted returns the label set of a call to r that ended with status.
func (r *route) counted(status int) metric.MeasurementOption {
	if o, ok := r.byCode.Load(status); ok {
		return o.(metric.MeasurementOption)
	}
	code := CodeError
	if status != noAnswer {
		code = strconv.Itoa(status)
	}
	o, _ := r.byCode.LoadOrStore(status, metric.WithAttributeSet(attribute.NewSet(r.api, routeKey.String(r.label), codeKey.String(code))))
	return o.(metric.MeasurementOption)
}

// NewTransport returns a Transport over base (http.DefaultTransport when
// nil) for the API called api. Each route template is a method, a space
// and a path whose {name} segments match any one segment, such as
// "GET /job/indexing" or "GET /offres/{id}"; it matches a request with that
// method whose path ends with those segments, so that the API's base path
// (/v1, /partenaire/offresdemploi/v2) needs no saying. Put literal templates
// before the wildcard ones they overlap: the first match wins.
func NewTransport(base http.RoundTripper, api string, routes ...string) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	apiAttr := apiKey.String(api)
	t := &Transport{base: base, other: newRoute(apiAttr, RouteOther)}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		rt := newRoute(apiAttr, r)
		rt.method = method
		for seg := range strings.SplitSeq(strings.Trim(path, "/"), "/") {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				seg = ""
			}
			rt.segments = append(rt.segments, seg)
		}
		t.routes = append(t.routes, rt)
	}
	m := otel.Meter(meterName)
	var err error
	t.requests, err = m.Int64Counter("pulljobs_http_client_requests_total",
		metric.WithDescription("Calls to the HrFlow and France Travail APIs, by route template and status code (error: no answer)."))
	if err != nil {
		otel.Handle(err)
	}
	t.duration, err = m.Float64Histogram("pulljobs_http_client_request_duration_seconds", metric.WithUnit("s"),
		metric.WithDescription("Time from a call to the API's response headers, by route template."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	return t
}

// RoundTrip sends req with the base transport and records the call.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	elapsed := time.Since(start).Seconds()
	status := noAnswer
	if err == nil {
		status = resp.StatusCode
	}
	ctx, r := req.Context(), t.match(req)
	t.requests.Add(ctx, 1, r.counted(status))
	t.duration.Record(ctx, elapsed, r.timed)
	return resp, err
}

// Route returns the label of the first route template that matches req, or
// RouteOther.
func (t *Transport) Route(req *http.Request) string { return t.match(req).label }

func (t *Transport) match(req *http.Request) *route {
	path := strings.Trim(req.URL.Path, "/")
	for _, r := range t.routes {
		if r.method == req.Method && matchSuffix(path, r.segments) {
			return r
		}
	}
	return t.other
}

// matchSuffix reports whether path's last segments are segments, "" in
// segments matching any one non-empty segment.
func matchSuffix(path string, segments []string) bool {
	for i := len(segments) - 1; i >= 0; i-- {
		j := strings.LastIndexByte(path, '/')
		seg := path[j+1:]
		if seg == "" || (segments[i] != "" && segments[i] != seg) {
			return false
		}
		if j < 0 {
			path = ""
			if i > 0 {
				return false
			}
			break
		}
		path = path[:j]
	}
	return true
}

// CloseIdleConnections closes the base transport's idle connections, as
// http.Client.CloseIdleConnections expects of a transport.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
