package hrflowtest

import (
	"net/url"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestUpdatedAt checks what sets a job's updated_at: the clock on a create
// or an edit that does not send it, strictly after the previous one even
// within a second; the value sent, verbatim, when sent; never archiving or
// unarchiving. The listing shows what the writes answered.
func TestUpdatedAt(t *testing.T) {
	c := &clock{t: fixedNow}
	e := newEnv(t, Config{Now: c.now})
	stamp := func(t time.Time) string { return t.UTC().Format(TimeLayout) }
	updated := func(a reply) string {
		t.Helper()
		u, _ := a.job(t)["updated_at"].(string)
		return u
	}
	listed := func() string {
		t.Helper()
		refs := e.do(t, req{method: "GET", path: listPath(url.Values{"reference": {"U"}})}).refs(t)
		if len(refs) != 1 {
			t.Fatalf("listing by reference: %v", refs)
		}
		u, _ := refs[0]["updated_at"].(string)
		return u
	}
	put := func(fields map[string]any) reply {
		t.Helper()
		a := e.do(t, req{method: "PUT", path: "/job/indexing", body: flatJob("U", fields)})
		a.want(t, 200, "Job edited")
		return a
	}
	patch := func(flag int) {
		t.Helper()
		e.do(t, req{method: "PATCH", path: "/job/indexing/archive", body: map[string]any{"board_key": DefaultBoardKey, "reference": "U", "is_archive": flag}}).want(t, 200, "")
	}

	create := func() string {
		return updated(e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("U", nil)}))
	}
	edit := func(fields map[string]any) func() string { return func() string { return updated(put(fields)) } }
	archive := func(flag int) func() string { return func() string { patch(flag); return listed() } }
	steps := []struct {
		name  string
		clock time.Duration // after fixedNow
		write func() string // returns updated_at as the write, or the listing after it, shows it
		want  string
	}{
		{"create without updated_at", 0, create, stamp(fixedNow)},
		{"edit without updated_at", 90 * time.Second, edit(nil), stamp(fixedNow.Add(90 * time.Second))},
		{"edit again within the second", 90 * time.Second, edit(nil), stamp(fixedNow.Add(91 * time.Second))},
		{"and again", 90 * time.Second, edit(nil), stamp(fixedNow.Add(92 * time.Second))},
		{"edit once the clock passed it", time.Hour, edit(nil), stamp(fixedNow.Add(time.Hour))},
		{"edit with updated_at", time.Hour, edit(map[string]any{"updated_at": "2025-08-05T09:15:13.155Z"}), "2025-08-05T09:15:13.155Z"},
		{"edit with a far future updated_at", time.Hour, edit(map[string]any{"updated_at": "2099-01-01T00:00:00Z"}), "2099-01-01T00:00:00Z"},
		{"edit after it takes the clock", time.Hour, edit(nil), stamp(fixedNow.Add(time.Hour))},
		{"archive leaves it", 2 * time.Hour, archive(1), stamp(fixedNow.Add(time.Hour))},
		{"unarchive leaves it", 3 * time.Hour, archive(0), stamp(fixedNow.Add(time.Hour))},
		{"the listing shows the last write", 3 * time.Hour, listed, stamp(fixedNow.Add(time.Hour))},
	}
	for _, s := range steps {
		c.set(fixedNow.Add(s.clock))
		if got := s.write(); got != s.want {
			t.Errorf("%s: updated_at %q, want %q", s.name, got, s.want)
		}
	}
	b := e.do(t, req{method: "POST", path: "/job/indexing", body: flatJob("V", map[string]any{"updated_at": "2025-01-02T03:04:05Z"})})
	if got := updated(b); got != "2025-01-02T03:04:05Z" {
		t.Errorf("create with updated_at: %q, want it verbatim", got)
	}
}
