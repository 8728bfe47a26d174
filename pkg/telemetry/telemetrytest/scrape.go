package telemetrytest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are the metric families of one scrape, by name.
type Metrics map[string]*dto.MetricFamily

// Scrape reads url (a /metrics endpoint) in the Prometheus text format.
func Scrape(client *http.Client, url string) (Metrics, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m, err := parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}

// Read asks h, a metrics handler, for the metrics without a network.
func Read(h http.Handler) (Metrics, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("metrics handler answered %d", rec.Code)
	}
	return parse(rec.Body)
}

func parse(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	return Metrics(fams), err
}

// Value returns the sum of the values of the series of the counter or
// gauge called name whose labels include labels, given as name, value
// pairs; for a histogram, the sum of their sample counts. found is false
// when no series matches. It panics when labels has an odd length.
func (m Metrics) Value(name string, labels ...string) (v float64, found bool) {
	if len(labels)%2 != 0 {
		panic("telemetrytest: Value wants label name, value pairs")
	}
	fam := m[name]
	if fam == nil {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		found = true
		switch {
		case s.GetCounter() != nil:
			v += s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			v += s.GetGauge().GetValue()
		case s.GetHistogram() != nil:
			v += float64(s.GetHistogram().GetSampleCount())
		case s.GetUntyped() != nil:
			v += s.GetUntyped().GetValue()
		}
	}
	return v, found
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i < len(pairs); i += 2 {
		ok := false
		for _, l := range s.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
