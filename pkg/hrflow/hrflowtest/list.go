package hrflowtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// listed is a job picked for a page, with its archived_at at that moment.
type listed struct {
	ent        *entry
	board      string
	archivedAt string
}

// listFilter selects jobs by their archived state, from the "archived"
// parameter (UNVERIFIED: the emulator's own name; the real API documents no
// such filter).
type listFilter uint8

const (
	listAll listFilter = iota
	listLive
	listArchived
)

func (b *board) listing(f listFilter) []*entry {
	switch f {
	case listLive:
		return b.live
	case listArchived:
		return b.archived
	}
	return b.all
}

// listJobs serves GET /storing/jobs. A page of one board sorted by
// created_at costs the page's length; several boards, or sort_by=updated_at,
// cost a sort of the boards' jobs.
func (e *Emulator) listJobs(r *http.Request, buf []byte) (int, string, []byte, []byte, error) {
	q := r.URL.Query()
	var keys []string
	if err := json.Unmarshal([]byte(q.Get("board_keys")), &keys); err != nil || len(keys) == 0 {
		return 0, "", nil, nil, badRequest(`board_keys: Not a valid list (want a JSON list of board keys, such as ["…"]).`)
	}
	boards := make([]*board, 0, len(keys))
	for _, k := range keys {
		b := e.board(k)
		if b == nil {
			return 0, "", nil, nil, errBoardNotFound
		}
		if !slices.Contains(boards, b) {
			boards = append(boards, b)
		}
	}
	page, err := intParam(q.Get("page"), "page", 1, 1, 1<<30)
	if err != nil {
		return 0, "", nil, nil, err
	}
	limit, err := intParam(q.Get("limit"), "limit", DefaultListLimit, 1, MaxListLimit)
	if err != nil {
		return 0, "", nil, nil, err
	}
	desc := true
	switch strings.ToLower(q.Get("order_by")) {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return 0, "", nil, nil, badRequest("order_by: Must be one of: asc, desc.")
	}
	byUpdated := false
	switch q.Get("sort_by") {
	case "", "created_at":
	case "updated_at":
		byUpdated = true
	default:
		return 0, "", nil, nil, badRequest("sort_by: Must be one of: created_at, updated_at.")
	}
	returnJob, err := boolParam(q.Get("return_job"), "return_job")
	if err != nil {
		return 0, "", nil, nil, err
	}
	filter := listAll
	if v := q.Get("archived"); v != "" {
		archived, err := boolParam(v, "archived")
		if err != nil {
			return 0, "", nil, nil, err
		}
		filter = listLive
		if archived {
			filter = listArchived
		}
	}

	offset := (page - 1) * limit
	var total int
	var items []listed
	if len(boards) == 1 && !byUpdated {
		items, total = boards[0].page(filter, offset, limit, desc)
	} else {
		items, total = pageOfMany(boards, filter, offset, limit, desc, byUpdated)
	}

	data := append(buf, '[')
	for i, it := range items {
		if i > 0 {
			data = append(data, ',')
		}
		if returnJob {
			data = it.ent.appendJob(data, it.archivedAt)
		} else {
			data = it.ent.appendRef(data, it.board, it.archivedAt)
		}
	}
	data = append(data, ']')
	maxPage := (total + limit - 1) / limit
	meta := []byte(`{"page":` + strconv.Itoa(page) + `,"maxPage":` + strconv.Itoa(maxPage) +
		`,"count":` + strconv.Itoa(len(items)) + `,"total":` + strconv.Itoa(total) + `}`)
	return http.StatusOK, "List of jobs", data, meta, nil
}

// page returns one page of the board's jobs in created_at order, and how
// many jobs the filter selects.
func (b *board) page(f listFilter, offset, limit int, desc bool) ([]listed, int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l := b.listing(f)
	total := len(l)
	if offset >= total {
		return nil, total
	}
	n := min(limit, total-offset)
	out := make([]listed, n)
	for i := range n {
		idx := offset + i
		if desc {
			idx = total - 1 - offset - i
		}
		out[i] = listed{l[idx], b.key, l[idx].archivedAt}
	}
	return out, total
}

// pageOfMany returns one page of the jobs of several boards, or of one board
// by updated_at.
func pageOfMany(boards []*board, f listFilter, offset, limit int, desc, byUpdated bool) ([]listed, int) {
	var all []listed
	for _, b := range boards {
		b.mu.RLock()
		for _, ent := range b.listing(f) {
			all = append(all, listed{ent, b.key, ent.archivedAt})
		}
		b.mu.RUnlock()
	}
	slices.SortFunc(all, func(x, y listed) int {
		c := 0
		if byUpdated {
			c = x.ent.updated.Compare(y.ent.updated)
		}
		if c == 0 {
			c = compareEntries(x.ent, y.ent)
		}
		if desc {
			c = -c
		}
		return c
	})
	if offset >= len(all) {
		return nil, len(all)
	}
	return all[offset:min(offset+limit, len(all))], len(all)
}

func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s: Must be an integer between %d and %d.", name, lo, hi)
	}
	return n, nil
}

// boolParam reads true/false in any case (Python's requests sends True and
// False), 1 and 0; "" is false.
func boolParam(v, name string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, badRequest("%s: Not a valid boolean.", name)
}
