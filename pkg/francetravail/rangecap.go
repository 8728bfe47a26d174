package francetravail

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
)

// rangeCapMessage matches the API's 400 for a range that starts past its
// cap, "La position de début doit être inférieure ou égale à 3000.",
// tolerant of case, accents and spacing.
var rangeCapMessage = regexp.MustCompile(`(?i)position\s+de\s+d[ée]but\s+doit\s+[êe]tre\s+inf[ée]rieure\s+ou\s+[ée]gale\s+[àa]\s*(\d+)`)

// RangeCap returns the largest range start the client asks for:
// MaxRangeStart, or the lower cap the API named since. Searches stop their
// pages there, and cut queries whose total is past it.
func (c *Client) RangeCap() int { return int(c.rangeCap.Load()) }

// reachable is how many hits of one query the client can fetch now.
func (c *Client) reachable() int { return c.RangeCap() + PageSize }

// learnCap reads err, the answer to a search of a range starting at start,
// and reports whether it is the API refusing that start for a cap that the
// client now knows, lower than start: the cap the message names, or, if
// that does not refuse start, start-1. The client keeps the lowest cap
// learned for its life.
func (c *Client) learnCap(err error, start int) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return false
	}
	m := rangeCapMessage.FindStringSubmatch(ae.Message)
	if m == nil {
		return false
	}
	named, convErr := strconv.Atoi(m[1])
	if convErr != nil || named >= start {
		named = start - 1
	}
	if named < 0 {
		return false
	}
	for {
		old := c.rangeCap.Load()
		if int64(named) >= old {
			return int64(start) > old // lowered meanwhile by another search
		}
		if c.rangeCap.CompareAndSwap(old, int64(named)) {
			c.log.Warn("francetravail: the API caps range starts lower than documented; windows are cut to fit",
				"range_cap", named, "was", old)
			return true
		}
	}
}
