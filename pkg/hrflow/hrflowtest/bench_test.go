package hrflowtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pulljobs/pulljobs/pkg/fixtures"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// benchJobs returns real jobs from the fixtures, or synthetic ones of a
// similar size when the fixtures are absent.
func benchJobs(b *testing.B) []hrflow.Job {
	if dir, _ := fixtures.Find(); dir != "" {
		return fixtureJobs(b, 1000)
	}
	jobs := make([]hrflow.Job, 100)
	for i := range jobs {
		jobs[i] = hrflow.Job{
			"name": "Assistant administratif (H/F)", "reference": "X", "created_at": "2025-08-04T18:00:50.137Z",
			"updated_at": "2025-08-05T09:15:13.155Z", "url": nil, "sections": []any{},
			"location": map[string]any{"lat": 45.9, "lng": 6.6, "text": "74 - COMBLOUX 74920"},
			"summary":  strings.Repeat("Synergie recherche un assistant administratif. ", 40),
			"tags":     []any{map[string]any{"name": "pole_emploi_romeCode", "value": "M1607"}},
		}
	}
	return jobs
}

func withRef(j hrflow.Job, ref string) hrflow.Job {
	out := make(hrflow.Job, len(j))
	for k, v := range j {
		out[k] = v
	}
	out["reference"] = ref
	return out
}

func benchClient(b *testing.B) (*Emulator, *hrflow.Client) {
	em, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(em)
	b.Cleanup(srv.Close)
	c, err := hrflow.NewClient(hrflow.Config{APISecret: DefaultAPISecret, APIUser: DefaultAPIUser, BaseURL: BaseURL(srv.URL)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return em, c
}

// BenchmarkCreateGet creates a job and reads it back through HTTP, from
// concurrent clients: 2 requests per operation.
//
//	go test -run '^$' -bench CreateGet -benchmem ./pkg/hrflow/hrflowtest
func BenchmarkCreateGet(b *testing.B) {
	jobs := benchJobs(b)
	_, c := benchClient(b)
	var n atomic.Int64
	b.SetParallelism(8)
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			ref := fmt.Sprintf("B%d", i)
			if _, err := c.CreateJob(ctx, DefaultBoardKey, withRef(jobs[int(i)%len(jobs)], ref)); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.GetJob(ctx, DefaultBoardKey, ref); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRates(b, cpu)
}

// BenchmarkUpsertNew upserts new jobs, as a first run does: a GET that
// finds nothing, then a POST.
func BenchmarkUpsertNew(b *testing.B) {
	jobs := benchJobs(b)
	_, c := benchClient(b)
	var n atomic.Int64
	b.SetParallelism(8)
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			res, err := c.Upsert(ctx, DefaultBoardKey, withRef(jobs[int(i)%len(jobs)], fmt.Sprintf("U%d", i)), hrflow.UpsertOptions{})
			if err != nil || res.Action != hrflow.ActionCreated {
				b.Error(res, err)
				return
			}
		}
	})
	reportRates(b, cpu)
}

// BenchmarkStoredJobMemory measures the heap a stored job takes, against
// the size of its JSON.
//
//	go test -run '^$' -bench StoredJobMemory -benchtime 20000x ./pkg/hrflow/hrflowtest
func BenchmarkStoredJobMemory(b *testing.B) {
	jobs := benchJobs(b)
	var size int
	for _, j := range jobs {
		raw, _ := json.Marshal(j)
		size += len(raw)
	}
	em, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		if _, err := em.seed(DefaultBoardKey, withRef(jobs[i%len(jobs)], fmt.Sprint("M", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/job")
	b.ReportMetric(float64(size)/float64(len(jobs)), "json-B/job")
	runtime.KeepAlive(em)
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports jobs and requests (2 per job) per second, and the CPU
// time per job of the whole process (client and emulator), which the load
// of other processes on the machine does not inflate as it does wall time.
func reportRates(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64((cpuTime()-cpuStart).Microseconds())/float64(b.N), "cpu-µs/job")
}

// BenchmarkHandler measures the emulator alone, without the network: a
// create and a get per operation, served by ServeHTTP into a recorder.
//
//	go test -run '^$' -bench Handler -benchmem ./pkg/hrflow/hrflowtest
func BenchmarkHandler(b *testing.B) {
	jobs := benchJobs(b)
	bodies := make([][]byte, len(jobs))
	for i, j := range jobs {
		body := withRef(j, "")
		body["board_key"] = DefaultBoardKey
		raw, err := json.Marshal(body)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = raw
	}
	em, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		ref := fmt.Sprint("H", i)
		body := bytes.Replace(bodies[i%len(bodies)], []byte(`"reference":""`), []byte(`"reference":"`+ref+`"`), 1)
		r := httptest.NewRequest("POST", APIPath+"/job/indexing", bytes.NewReader(body))
		r.Header.Set("X-API-KEY", DefaultAPISecret)
		r.Header.Set("X-USER-EMAIL", DefaultAPIUser)
		w := httptest.NewRecorder()
		em.ServeHTTP(w, r)
		if w.Code != 201 {
			b.Fatalf("create: %d %s", w.Code, w.Body)
		}
		r = httptest.NewRequest("GET", APIPath+"/job/indexing?board_key="+DefaultBoardKey+"&reference="+ref, nil)
		r.Header.Set("X-API-KEY", DefaultAPISecret)
		r.Header.Set("X-USER-EMAIL", DefaultAPIUser)
		w = httptest.NewRecorder()
		em.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("get: %d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "req/s")
}
