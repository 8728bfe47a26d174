package francetravail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// How Search fetches a complete result.
//
// The API serves at most MaxReachable hits of a query (ranges start at 3000
// at most, 150 per call), or fewer: some accounts' cap is lower. The
// client starts from 3000 and learns a lower cap from the 400 that names
// it (Client.RangeCap); the window being drained is then cut, or drained
// again within the new cap, and the offers met again count as Overlaps. Search first asks for the range 0-149 of the query
// as given: the answer's Content-Range holds the total. If it is within the
// cap, that page is kept and the rest is fetched 150 at a time for as long as
// Content-Range says more remain (200 and 206 alike; 204 ends it).
//
// Beyond the cap, the query is split into windows of creation date
// (minCreationDate/maxCreationDate, second precision): the user's own window
// when given, else [wideWindowStart, now + 1 day]; other criteria,
// publieeDepuis included, are kept. A window over the cap is cut into
// children, each probed in turn (range 0-149), depth first, until a window
// holds at most MaxReachable matches; its probe page is then its first page.
//
// How a window is cut: the default wide window first at now - recentSpan, as
// nearly all live offers are recent (publieeDepuis goes back 31 days at
// most) and the years before hold few or none; any other window into k equal
// spans, k being its total over splitTarget (at least 2, at most maxFanout),
// so that with an even spread every child fits at once. A generalised
// bisection: no probe is spent on intermediate levels when the spread is
// even, and an uneven child is simply cut again.
//
// Children share their boundary second on purpose: whether the API treats
// maxCreationDate as inclusive is UNVERIFIED, and with shared bounds nothing
// is lost either way; the offers seen twice are dropped by id and counted
// as Overlaps, not Duplicates. A window of one second or less cannot be
// cut: its first MaxReachable offers are fetched, and the search is
// reported Truncated, with Unreached = Total - Fetched - Duplicates (Total
// being the total of the query as given, so overlaps do not count twice).
//
// Only one page of offers is held at a time, plus the set of ids seen (an
// IDSet: a few bytes an offer) and a stack of at most a few hundred
// windows: nothing else grows with the number of offers.
var wideWindowStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Tuning of the split.
const (
	// wideWindowMargin extends the default window past now, so that offers
	// created during the search, or on a server whose clock is ahead, are in.
	wideWindowMargin = 24 * time.Hour
	// recentSpan is where the default wide window is cut first.
	recentSpan = 32 * 24 * time.Hour
	// splitShare is the share of the reachable matches a child window aims
	// at: below the cap, to leave room for an uneven spread.
	splitShare = 0.85
	// maxFanout bounds the children of one window.
	maxFanout = 32
)

// Search streams every offer matching q, each once (dedupe by id), calling
// yield for each in turn from the calling goroutine; yield's error stops the
// search and is returned wrapped. With q.Range set it fetches exactly that
// range, in one call. Otherwise it fetches the complete result, splitting the
// query into creation-date windows past the API's cap of MaxReachable hits
// (see the package's comment on wideWindowStart for the method).
//
// q is validated first (an error wrapping ErrInvalidQuery, no network call).
// Search holds one page of offers at a time, plus the set of ids seen. An
// offer passed to yield shares memory with the rest of its page only, which
// nothing reuses: the caller may keep it after yield returns.
// An offer received again is not passed on: Summary.Duplicates counts those
// the API served twice, Summary.Overlaps those met again only because two
// windows share their boundary second.
// The Summary is valid, for what was done, even when an error is returned.
// Offers without an id cannot be deduplicated and are passed on as they are.
func (c *Client) Search(ctx context.Context, q Query, yield func(Offer) error) (Summary, error) {
	if yield == nil {
		return Summary{}, errors.New("francetravail: search: nil yield")
	}
	if err := q.Validate(); err != nil {
		return Summary{}, fmt.Errorf("francetravail: search: %w", err)
	}
	s := &searcher{c: c, yield: yield}
	s.hooks = callHooks{onAnswer: func() { s.sum.Requests++ }}
	err := s.run(ctx, q)
	return s.sum, err
}

type searcher struct {
	c     *Client
	yield func(Offer) error
	seen  IDSet
	sum   Summary
	hooks callHooks // count the answers, and read them into one buffer
	// split is set once the query is cut into windows: root is the window
	// of the query as given, cur the window being drained.
	split     bool
	root, cur window
	// drained holds the ids the current drain passed on; aborted, those
	// of drains given up when a lower range cap was learned, whose offers
	// are met again.
	drained IDSet
	aborted []*IDSet
}

// errCapLearned stops a drain whose next page starts past the range cap
// the API just named: the window must be cut, or drained again.
var errCapLearned = errors.New("francetravail: range cap learned")

// page is one answer of the search endpoint.
type page struct {
	status int
	cr     ContentRange // Total -1 when the header is missing or says "*"
	hasCR  bool
	offers []rawOffer
}

type window struct{ lo, hi time.Time }

func (s *searcher) run(ctx context.Context, q Query) error {
	if q.Range != "" {
		p, err := s.fetch(ctx, q, q.Range)
		if err != nil {
			return err
		}
		s.sum.Windows = 1
		s.sum.Total = max(p.cr.Total, 0)
		return s.emit(p, 0)
	}
	first, err := s.fetch(ctx, q, rangeOf(0))
	if err != nil {
		return err
	}
	s.sum.Total = max(first.cr.Total, 0)
	for first.cr.Total <= s.c.reachable() {
		s.sum.Windows = 1
		if err := s.drain(ctx, q, first); !errors.Is(err, errCapLearned) {
			return err
		}
		// A lower cap: drain again within it, or split.
	}
	return s.splitRun(ctx, q, first)
}

// splitRun fetches the query whose first page is first, over the cap, by
// creation-date windows.
func (s *searcher) splitRun(ctx context.Context, q Query, first *page) error {
	var root window
	if q.MinCreationDate != "" {
		root.lo, _ = ParseCreationDate(q.MinCreationDate) // validated
		root.hi, _ = ParseCreationDate(q.MaxCreationDate)
	} else {
		root = window{lo: wideWindowStart, hi: time.Now().UTC().Add(wideWindowMargin).Truncate(time.Second)}
	}
	// The first answer is the root window's probe: the user's window, or
	// everything (which the wide window covers).
	type item struct {
		w     window
		probe *page // nil: probe first
		wide  bool  // the default wide window
	}
	s.split, s.root = true, root
	stack := []item{{w: root, probe: first, wide: q.MinCreationDate == ""}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		wq := q
		wq.MinCreationDate = it.w.lo.Format(CreationDateLayout)
		wq.MaxCreationDate = it.w.hi.Format(CreationDateLayout)
		p := it.probe
		if p == nil {
			var err error
			if p, err = s.fetch(ctx, wq, rangeOf(0)); err != nil {
				return err
			}
		}
		span := it.w.hi.Sub(it.w.lo)
		reachable := s.c.reachable()
		switch {
		case p.cr.Total <= reachable || span <= time.Second:
			if p.cr.Total > reachable {
				s.sum.Truncated = true
				s.c.log.Warn("francetravail: window over the cap cannot be split",
					"from", wq.MinCreationDate, "to", wq.MaxCreationDate, "total", p.cr.Total)
			}
			s.cur = it.w
			err := s.drain(ctx, wq, p)
			if errors.Is(err, errCapLearned) {
				stack = append(stack, item{w: it.w, probe: p, wide: it.wide}) // cut it, or drain it again
				continue
			}
			if err != nil {
				return err
			}
			s.sum.Windows++
		default:
			children := splitWindow(it.w, p.cr.Total, int(splitShare*float64(reachable)), it.wide)
			for i := len(children) - 1; i >= 0; i-- { // oldest first
				stack = append(stack, item{w: children[i]})
			}
		}
	}
	if s.sum.Truncated {
		s.sum.Unreached = max(s.sum.Total-s.sum.Fetched-s.sum.Duplicates, 0)
	}
	return nil
}

// splitWindow cuts w, which holds total matches (more than the cap), into
// windows sharing their boundaries, each meant to hold target matches.
// wide says w is the default wide window.
func splitWindow(w window, total, target int, wide bool) []window {
	if cut := w.hi.Add(-wideWindowMargin - recentSpan).Truncate(time.Second); wide && cut.After(w.lo) && cut.Before(w.hi) {
		return []window{{w.lo, cut}, {cut, w.hi}}
	}
	secs := int64(w.hi.Sub(w.lo) / time.Second)
	target = max(target, 1)
	k := int64(min(max((total+target-1)/target, 2), maxFanout))
	k = min(k, secs)
	out := make([]window, 0, k)
	lo := w.lo
	for i := int64(1); i <= k; i++ {
		hi := w.lo.Add(time.Duration(secs*i/k) * time.Second)
		if i == k {
			hi = w.hi
		}
		out = append(out, window{lo, hi})
		lo = hi
	}
	return out
}

// drain yields p, then fetches the following pages of q while the
// Content-Range says more remain within the range cap; the last page the
// cap allows starts at the cap, and the offers it shows again are
// overlaps. When the API refuses a page for starting past a cap lower than
// the client knew, it learns the cap and returns errCapLearned: the offers
// passed on so far will be met again, as overlaps too.
func (s *searcher) drain(ctx context.Context, q Query, p *page) error {
	s.drained = IDSet{}
	seenBefore := 0 // the offers before this index were passed on already
	for {
		if err := s.emit(p, seenBefore); err != nil {
			return err
		}
		if p.status == http.StatusNoContent || len(p.offers) == 0 {
			return nil
		}
		next := p.cr.Last + 1
		if !p.hasCR || p.cr.Empty() {
			// No usable Content-Range: go on while pages come full.
			if len(p.offers) < PageSize {
				return nil
			}
			next = p.cr.First + len(p.offers)
		}
		rangeCap := s.c.RangeCap()
		if next >= rangeCap+PageSize || (p.cr.Total >= 0 && next >= p.cr.Total) {
			return nil
		}
		start := min(next, rangeCap)
		prev := p
		var err error
		if p, err = s.fetch(ctx, q, rangeOf(start)); err != nil {
			if s.c.learnCap(err, start) {
				drained := s.drained
				s.aborted = append(s.aborted, &drained)
				s.drained = IDSet{}
				return errCapLearned
			}
			return err
		}
		seenBefore = next
		if p.hasCR && !p.cr.Empty() && p.cr.Last <= prev.cr.Last {
			return nil // no progress: never loop
		}
	}
}

// rangeOf is the page of PageSize starting at first.
func rangeOf(first int) string {
	return strconv.Itoa(first) + "-" + strconv.Itoa(first+PageSize-1)
}

// emit passes on the offers of p not met before. Of those met before,
// the ones at an index below seenBefore (on a page that overlaps the one
// before it), of a drain given up, or of a shared boundary second are
// Overlaps; the others, Duplicates.
func (s *searcher) emit(p *page, seenBefore int) error {
	for i, o := range p.offers {
		id := o.id
		if id == "" { // not a plain string: let the full parser decide
			id, _ = o.offer.ID()
		}
		if id != "" && !s.seen.Add(id) {
			if p.cr.First+i < seenBefore || s.onSharedBoundary(o.offer) || s.metAgain(id) {
				s.sum.Overlaps++
			} else {
				s.sum.Duplicates++
			}
			continue
		}
		if id != "" {
			s.drained.Add(id)
		}
		s.sum.Fetched++
		if err := s.yield(o.offer); err != nil {
			return fmt.Errorf("francetravail: search: yield: %w", err)
		}
	}
	return nil
}

// metAgain reports whether an offer met again was passed on by a drain
// given up for a lower range cap: meeting it twice says nothing of the
// API.
func (s *searcher) metAgain(id string) bool {
	for _, a := range s.aborted {
		if a.Has(id) {
			return true
		}
	}
	return false
}

// onSharedBoundary reports whether an offer met again was created in the
// boundary second that the window being drained shares with another: then
// both windows may hold it, and meeting it twice says nothing of the API.
// (An offer the API served twice within that one second is taken for an
// overlap too: a miscount of one, never a lost offer.)
func (s *searcher) onSharedBoundary(o Offer) bool {
	if !s.split {
		return false
	}
	created, ok := creationSecond(o)
	return ok && (created.Equal(s.cur.lo) && !s.cur.lo.Equal(s.root.lo) ||
		created.Equal(s.cur.hi) && !s.cur.hi.Equal(s.root.hi))
}

// creationSecond returns the offer's dateCreation truncated to the second.
// Offers write it in RFC 3339, with or without milliseconds; without an
// offset it is read as UTC.
func creationSecond(o Offer) (time.Time, bool) {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(o)
	if err != nil {
		return time.Time{}, false
	}
	s := string(v.GetStringBytes("dateCreation"))
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Truncate(time.Second), true
		}
	}
	return time.Time{}, false
}

// fetch gets one page of q for range rng.
func (s *searcher) fetch(ctx context.Context, q Query, rng string) (*page, error) {
	q.Range = rng
	resp, err := s.c.get(ctx, "/offres/search", q.Values(), &s.hooks)
	if err != nil {
		return nil, err
	}
	return parsePage(resp, rng)
}

func parsePage(resp *response, rng string) (*page, error) {
	p := &page{status: resp.status, cr: ContentRange{First: -1, Last: -1, Total: -1}}
	if v := resp.header.Get("Content-Range"); v != "" {
		cr, err := ParseContentRange(v)
		if err != nil {
			return nil, fmt.Errorf("francetravail: search range %s: %w", rng, err)
		}
		p.cr, p.hasCR = cr, true
	}
	if resp.status == http.StatusNoContent {
		if p.cr.Total < 0 {
			p.cr.Total = 0
		}
		return p, nil
	}
	offers, err := splitResults(resp.body)
	if err != nil {
		return nil, fmt.Errorf("francetravail: search range %s: %d answer: %w", rng, resp.status, err)
	}
	p.offers = offers
	if !p.hasCR {
		first, _, _ := ParseRange(rng)
		p.cr.First = first
		if len(p.offers) < PageSize { // a short page without header: the end
			p.cr.Total = first + len(p.offers)
		}
	}
	return p, nil
}

// searchRaw fetches one page for the query string v as is, without
// Validate; tests use it to reach the API's own checks.
func (c *Client) searchRaw(ctx context.Context, v url.Values) (*page, error) {
	resp, err := c.get(ctx, "/offres/search", v, nil)
	if err != nil {
		return nil, err
	}
	return parsePage(resp, v.Get("range"))
}
