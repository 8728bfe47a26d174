package pipeline

import (
	"time"
)

// The claims of a run (see store.Claim): who builds its board index
// (<run>.index), who fetches it (<run>.fetch) and who syncs it
// (<run>.final).

func (s indexState) Holder() string  { return s.Owner }
func (s indexState) Beat() time.Time { return s.Heartbeat }
func (s indexState) Settled() bool   { return s.done() }

func (f final) Holder() string  { return f.Owner }
func (f final) Beat() time.Time { return f.Heartbeat }
func (f final) Settled() bool   { return f.Abandoned != "" }

// fetchClaim is <run>.fetch: the process fetching the run.
type fetchClaim struct {
	// Owner names the fetching process; Heartbeat is its last sign of life
	// (UTC).
	Owner     string    `json:"owner"`
	Heartbeat time.Time `json:"heartbeat"`
}

func (f fetchClaim) Holder() string  { return f.Owner }
func (f fetchClaim) Beat() time.Time { return f.Heartbeat }
func (f fetchClaim) Settled() bool   { return false }
