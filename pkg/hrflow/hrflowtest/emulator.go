// Package hrflowtest is an emulator of the HrFlow.ai API, in the spirit of
// net/http/httptest, for tests and the sandbox.
package hrflowtest

import (
	"errors"
	"net/http"
	"time"

	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// Sandbox defaults.
const (
	APIPath          = "/v1"
	DefaultAPISecret = "ask_00000000000000000000000000000000"
	DefaultAPIUser   = "sandbox@example.com"
	DefaultBoardKey  = "0000000000000000000000000000000000000000"
)

// Config configures an Emulator.
type Config struct {
	Keys   []APIKey
	Boards []string
	Faults emulator.Config
	Now    func() time.Time
}

// APIKey is an API key the emulator accepts.
type APIKey struct{ Secret, User string }

// Emulator emulates the HrFlow.ai API.
type Emulator struct{ faults *emulator.Faults }

// New returns an emulator.
func New(cfg Config) (*Emulator, error) { return nil, errors.New("hrflowtest: not implemented") }

// ServeHTTP serves the API under APIPath and admin routes.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {}

// BaseURL returns the client base URL for a server URL.
func BaseURL(serverURL string) string { return serverURL + APIPath }

// Faults returns the fault injection.
func (e *Emulator) Faults() *emulator.Faults { return e.faults }

// Stats returns the counters.
func (e *Emulator) Stats() emulator.Stats { return e.faults.Stats() }

// AddBoard adds a board.
func (e *Emulator) AddBoard(key string) {}

// SeedJob stores a job.
func (e *Emulator) SeedJob(boardKey string, job hrflow.Job, archived bool) (hrflow.Job, error) {
	return nil, errors.New("hrflowtest: not implemented")
}

// Jobs returns a snapshot of a board.
func (e *Emulator) Jobs(boardKey string) []hrflow.Job { return nil }
