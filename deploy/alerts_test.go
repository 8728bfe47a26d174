package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"sigs.k8s.io/yaml"

	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// boardSyncMetric is what fetcher serve exports each board's last
// successful sync as (pkg/service; TestTelemetryMultiProcess scrapes it).
const boardSyncMetric = "pulljobs_board_last_sync_time_seconds"

// parseRules parses a rule file's content as Prometheus does: strictly,
// every expression and template checked.
func parseRules(t *testing.T, where string, content []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
	for _, err := range errs {
		t.Errorf("%s: %v", where, err)
	}
	if groups == nil {
		t.FailNow()
	}
	return groups
}

// TestAlertRules parses the alerting rules of compose's Prometheus and of
// the Kubernetes PrometheusRule with Prometheus's own parser, checks they
// are the same, and evaluates the board alert with Prometheus's engine: it
// fires for a board not synced for over 24 hours, and only for it.
func TestAlertRules(t *testing.T) {
	content, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	compose := parseRules(t, "compose/alerts.yml", content)

	var pr struct {
		APIVersion string                `json:"apiVersion"`
		Kind       string                `json:"kind"`
		Metadata   struct{ Name string } `json:"metadata"`
		Spec       json.RawMessage       `json:"spec"`
	}
	raw, err := os.ReadFile(filepath.Join(k8sDir, "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
		t.Fatalf("k8s/monitoring/prometheusrule.yaml: %v", err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("k8s/monitoring/prometheusrule.yaml: %s %s, want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	spec, err := yaml.JSONToYAML(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	operator := parseRules(t, "k8s/monitoring/prometheusrule.yaml", spec)
	if !reflect.DeepEqual(compose.Groups, operator.Groups) {
		t.Errorf("the PrometheusRule's groups differ from compose/alerts.yml's:\n%+v\n%+v", operator.Groups, compose.Groups)
	}

	var rule *rulefmt.Rule
	for _, g := range compose.Groups {
		for i := range g.Rules {
			if g.Rules[i].Alert == "PulljobsBoardNotSynced" {
				rule = &g.Rules[i]
			}
		}
	}
	if rule == nil {
		t.Fatal("no alert PulljobsBoardNotSynced")
	}
	if time.Duration(rule.For) > time.Hour {
		t.Errorf("the alert waits %v before firing, want at most an hour past the 24 the licence allows", time.Duration(rule.For))
	}
	if rule.Labels["severity"] == "" || rule.Annotations["summary"] == "" {
		t.Errorf("the alert has no severity or summary: %+v", rule)
	}

	// Three boards at now: one synced an hour ago, one 30 hours ago, each
	// reported by two fetcher serve replicas; and one that never synced.
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fresh, stale := now.Add(-time.Hour), now.Add(-30*time.Hour)
	var series []storage.Series
	for _, replica := range []string{"10.0.0.1:8080", "10.0.0.2:8080"} {
		for board, synced := range map[string]time.Time{"fresh": fresh, "stale": stale} {
			var samples []chunks.Sample
			for at := now.Add(-2 * time.Hour); !at.After(now); at = at.Add(time.Minute) {
				samples = append(samples, sample{at.UnixMilli(), float64(synced.Unix())})
			}
			series = append(series, storage.NewListSeries(labels.FromStrings(model.MetricNameLabel, boardSyncMetric, "board_key", board, "instance", replica), samples))
		}
	}
	got := evaluate(t, rule.Expr, series, now)
	if len(got) != 1 || got[0].Metric.Get("board_key") != "stale" {
		t.Fatalf("the alert's expression at now: %v, want the stale board only", got)
	}
	if age := got[0].F; age != (30 * time.Hour).Seconds() {
		t.Errorf("the stale board's value %v, want its age, %v s", age, (30 * time.Hour).Seconds())
	}
	if runstatus.MaxSyncAge != 24*time.Hour {
		t.Errorf("runstatus.MaxSyncAge %v: the alert and pulljobs status --boards must agree on 24 hours", runstatus.MaxSyncAge)
	}
}

// sample is one sample of a float series.
type sample struct {
	t int64
	f float64
}

func (s sample) T() int64                      { return s.t }
func (s sample) ST() int64                     { return 0 }
func (s sample) F() float64                    { return s.f }
func (s sample) H() *histogram.Histogram       { return nil }
func (s sample) FH() *histogram.FloatHistogram { return nil }
func (s sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s sample) Copy() chunks.Sample           { return s }

// evaluate runs expr at ts with Prometheus's engine over series.
func evaluate(t *testing.T, expr string, series []storage.Series, ts time.Time) promql.Vector {
	t.Helper()
	queryable := storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range series {
				if matchAll(s.Labels(), ms) {
					out = append(out, s)
				}
			}
			return newSeriesSet(out)
		}}, nil
	})
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := engine.NewInstantQuery(context.Background(), queryable, nil, expr, ts)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func matchAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// seriesSet is a storage.SeriesSet over a slice.
type seriesSet struct {
	series []storage.Series
	i      int
}

func newSeriesSet(s []storage.Series) *seriesSet       { return &seriesSet{series: s, i: -1} }
func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }
