package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pulljobs/pulljobs/pkg/telemetry/telemetrytest"
)

var testRoutes = []string{
	"GET /job/indexing", "POST /job/indexing", "PATCH /job/indexing/archive", "GET /storing/jobs",
	"GET /offres/search", "GET /offres/{id}", "POST /connexion/oauth2/access_token",
}

func TestRoute(t *testing.T) {
	tr := NewTransport(nil, "test", testRoutes...)
	tests := []struct {
		method, url, want string
	}{
		{"GET", "https://api.hrflow.ai/v1/job/indexing?board_key=b&reference=r", "GET /job/indexing"},
		{"POST", "https://api.hrflow.ai/v1/job/indexing", "POST /job/indexing"},
		{"GET", "https://api.hrflow.ai/v1/job/indexing/", "GET /job/indexing"},
		{"PATCH", "https://api.hrflow.ai/v1/job/indexing/archive", "PATCH /job/indexing/archive"},
		{"DELETE", "https://api.hrflow.ai/v1/job/indexing", RouteOther},
		{"GET", "https://api.hrflow.ai/v1/storing/jobs?page=3", "GET /storing/jobs"},
		{"GET", "http://127.0.0.1:8081/partenaire/offresdemploi/v2/offres/search?range=0-149", "GET /offres/search"},
		{"GET", "http://127.0.0.1:8081/partenaire/offresdemploi/v2/offres/201ABCD", "GET /offres/{id}"},
		{"GET", "http://127.0.0.1:8081/partenaire/offresdemploi/v2/offres/201ABCD/more", RouteOther},
		{"GET", "http://127.0.0.1:8081/offres", RouteOther},
		{"POST", "http://127.0.0.1:8081/connexion/oauth2/access_token?realm=%2Fpartenaire", "POST /connexion/oauth2/access_token"},
		{"GET", "http://127.0.0.1:8081/", RouteOther},
		{"GET", "http://127.0.0.1:8081/indexing", RouteOther},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.url, nil)
		if got := tr.Route(req); got != tt.want {
			t.Errorf("Route(%s %s) = %q, want %q", tt.method, tt.url, got, tt.want)
		}
	}
}

// TestTransportMetrics makes real calls through the Transport and reads
// the counters and the histogram back from /metrics.
func TestTransportMetrics(t *testing.T) {
	tel, err := start(t, Options{ServiceName: "test", Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/job/indexing":
			w.WriteHeader(http.StatusCreated)
		case "GET /v1/storing/jobs":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer api.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // a refused connection: no status

	tr := NewTransport(http.DefaultTransport.(*http.Transport).Clone(), "hrflow", testRoutes...)
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()
	call := func(method, url string) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}
	for range 2 {
		call("POST", api.URL+"/v1/job/indexing")
	}
	call("GET", api.URL+"/v1/storing/jobs?page=1")
	call("GET", api.URL+"/v1/job/indexing/12345/secret-looking-id")
	call("GET", downURL+"/v1/job/indexing?reference=x")

	m, err := telemetrytest.Read(tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	const requests, duration = "pulljobs_http_client_requests_total", "pulljobs_http_client_request_duration_seconds"
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{requests, []string{"api", "hrflow", "route", "POST /job/indexing", "code", "201"}, 2},
		{requests, []string{"api", "hrflow", "route", "GET /storing/jobs", "code", "503"}, 1},
		{requests, []string{"api", "hrflow", "route", "other", "code", "404"}, 1},
		{requests, []string{"api", "hrflow", "route", "GET /job/indexing", "code", "error"}, 1},
		{requests, []string{"api", "hrflow"}, 5},
		{duration, []string{"api", "hrflow", "route", "POST /job/indexing"}, 2},
		{duration, []string{"api", "hrflow"}, 5},
	}
	for _, tt := range tests {
		if got, _ := m.Value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, s := range m[duration].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "code" {
				t.Errorf("the duration histogram has a code label: %v", s)
			}
		}
	}
}

// closeRecorder is a base transport that records CloseIdleConnections.
type closeRecorder struct {
	http.RoundTripper
	closed bool
}

func (c *closeRecorder) CloseIdleConnections() { c.closed = true }

func TestTransportClosesIdleConnections(t *testing.T) {
	base := &closeRecorder{RoundTripper: http.DefaultTransport}
	(&http.Client{Transport: NewTransport(base, "test")}).CloseIdleConnections()
	if !base.closed {
		t.Error("http.Client.CloseIdleConnections did not reach the base transport")
	}
}
