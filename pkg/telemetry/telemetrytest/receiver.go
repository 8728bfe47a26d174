// Package telemetrytest helps tests read what a pulljobs process exports,
// in the spirit of net/http/httptest: Receiver is an OpenTelemetry trace
// receiver that listens on the loopback interface for OTLP over HTTP
// (protobuf) and over gRPC and keeps the spans it receives, so that a test
// can point a process's OTEL_EXPORTER_OTLP_ENDPOINT at it; Scrape reads a
// process's /metrics.
package telemetrytest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// TracesPath is where OTLP/HTTP exporters send spans.
const TracesPath = "/v1/traces"

// maxBody bounds a request's body: a test's batches are small.
const maxBody = 64 << 20

// Span is one received span, its ids in lowercase hex.
type Span struct {
	TraceID, SpanID, ParentSpanID string // ParentSpanID is "" for a root span
	Name                          string
	Service                       string            // the resource's service.name
	Attributes                    map[string]string // values as strings
	Links                         []Link
}

// Link is a span's link to another span.
type Link struct{ TraceID, SpanID string }

// Receiver collects spans sent over OTLP/HTTP to HTTPEndpoint, or over
// OTLP/gRPC to GRPCEndpoint. Both are plain-text loopback endpoints.
type Receiver struct {
	// HTTPEndpoint is the base URL for OTLP/HTTP (protocol http/protobuf),
	// such as "http://127.0.0.1:4318"; spans go to HTTPEndpoint+TracesPath.
	HTTPEndpoint string
	// GRPCEndpoint is the URL for OTLP/gRPC (protocol grpc).
	GRPCEndpoint string

	http *httptest.Server
	grpc *grpc.Server
	wg   sync.WaitGroup

	mu    sync.Mutex
	spans []Span
}

// NewReceiver starts a Receiver. It panics if it cannot listen, as
// httptest.NewServer does. The caller must Close it.
func NewReceiver() *Receiver {
	r := &Receiver{}
	r.http = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	r.HTTPEndpoint = r.http.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.http.Close()
		panic(fmt.Sprintf("telemetrytest: listen: %v", err))
	}
	r.GRPCEndpoint = "http://" + ln.Addr().String()
	r.grpc = grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(r.grpc, traceService{r: r})
	r.wg.Go(func() { _ = r.grpc.Serve(ln) })
	return r
}

// Close stops both endpoints and waits for their goroutines.
func (r *Receiver) Close() {
	r.http.Close()
	r.grpc.Stop()
	r.wg.Wait()
}

// Spans returns a copy of the spans received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != TracesPath {
		http.Error(w, "want POST "+TracesPath, http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want Content-Type application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, "decode: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, err := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

type traceService struct {
	collectortrace.UnimplementedTraceServiceServer
	r *Receiver
}

func (s traceService) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.r.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) add(req *collectortrace.ExportTraceServiceRequest) {
	var spans []Span
	for _, rs := range req.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				spans = append(spans, convert(sp, service))
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.mu.Unlock()
}

func convert(sp *tracepb.Span, service string) Span {
	s := Span{
		TraceID:    hex.EncodeToString(sp.GetTraceId()),
		SpanID:     hex.EncodeToString(sp.GetSpanId()),
		Name:       sp.GetName(),
		Service:    service,
		Attributes: attributes(sp.GetAttributes()),
	}
	if p := sp.GetParentSpanId(); len(p) > 0 {
		s.ParentSpanID = hex.EncodeToString(p)
	}
	for _, l := range sp.GetLinks() {
		s.Links = append(s.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return s
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetDoubleValue())
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}
