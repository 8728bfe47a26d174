package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Request is the body of a request to pulljobs.run.<profile> and of a
// trigger on pulljobs.trigger.<profile>: JSON, {} for a run of the profile
// as it is, or with
//
//	{"dry_run": true, "replay_of": "<run id>", "weight": 2, "origin_parameters": {"departement": "73", "motsCles": null}}
//
// origin_parameters overrides search criteria only, each replacing the
// profile's (null clears one); credentials, endpoints and rate limits are
// refused, and so is every other section: a request may never redirect a
// run or replace its credentials. An empty body reads as {}.
type Request struct {
	DryRun   bool            `json:"dry_run,omitempty"`
	ReplayOf string          `json:"replay_of,omitempty"`
	Origin   json.RawMessage `json:"origin_parameters,omitempty"`
	// Weight, when set, replaces the profile's target_parameters.weight for
	// this run: its share of the fleet against the other runs in flight.
	Weight float64 `json:"weight,omitempty"`
}

// Micro error codes of refused requests, in the spirit of HTTP's.
const (
	CodeBadRequest  = "400" // unreadable request, unknown key, invalid criteria
	CodeForbidden   = "403" // a secret, an endpoint, another section
	CodeNotFound    = "404" // no such profile, or no such run
	CodeBoardBusy   = "409" // the board is held by another run
	CodeUnavailable = "503" // the service is stopping
	CodeInternal    = "500" // NATS trouble; the same request may pass later
)

// RequestError is a request or trigger refused before any run started.
// Description says why in words a user can act on, and never quotes a
// refused secret.
type RequestError struct {
	Code        string
	Description string
}

func (e *RequestError) Error() string { return e.Description }

func refuse(code, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// requestKeys are the keys a request may hold; forbiddenKeys the sections
// of a configuration it may not.
var (
	requestKeys   = []string{"dry_run", "replay_of", "origin_parameters", "weight"}
	forbiddenKeys = []string{config.SectionTarget, config.SectionAction, config.SectionPipeline, config.SectionSchedule}
)

// ParseRequest reads a request body, refusing unknown keys (with the
// closest known one) and the sections a request may not set. The criteria
// of origin_parameters are checked against a profile by Profile.RunSpec.
func ParseRequest(body []byte) (Request, error) {
	var req Request
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return req, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return req, refuse(CodeBadRequest, `unreadable request: want a JSON object such as {} or {"dry_run": true}`)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := fields[k]
		switch {
		case slices.Contains(forbiddenKeys, k):
			return req, refuse(CodeForbidden, "%s: refused: a request sets dry_run, replay_of, weight and search criteria only; the rest is the profile's", k)
		case k == "dry_run":
			if err := json.Unmarshal(v, &req.DryRun); err != nil {
				return req, refuse(CodeBadRequest, "dry_run: want true or false")
			}
		case k == "replay_of":
			if err := json.Unmarshal(v, &req.ReplayOf); err != nil || (req.ReplayOf != "" && !runstatus.ValidRunID(req.ReplayOf)) {
				return req, refuse(CodeBadRequest, "replay_of: want a run id (letters, digits, - and _)")
			}
		case k == "weight":
			if err := json.Unmarshal(v, &req.Weight); err != nil || !(req.Weight > 0 && req.Weight <= config.MaxWeight) {
				return req, refuse(CodeBadRequest, "weight: want a number in (0, %d]: the run's share of the fleet against the others in flight (1 by default)", config.MaxWeight)
			}
		case k == "origin_parameters":
			if t := bytes.TrimSpace(v); !bytes.Equal(t, []byte("null")) && (len(t) == 0 || t[0] != '{') {
				return req, refuse(CodeBadRequest, "origin_parameters: want an object of search criteria")
			}
			req.Origin = v
		default:
			return req, refuse(CodeBadRequest, "%s: unknown key%s", k, config.Suggest(k, append(requestKeys, forbiddenKeys...)...))
		}
	}
	return req, nil
}

// RunSpec returns the spec of a run of the profile as req asks for it,
// started by trigger. Criteria are checked as the configuration is, with
// the same messages; a credential or endpoint is refused (CodeForbidden).
func (p *Profile) RunSpec(req Request, trigger runstatus.Trigger) (pipeline.RunSpec, error) {
	cfg := p.Config
	if len(req.Origin) > 0 {
		var err error
		if cfg, err = cfg.WithCriteria(req.Origin); err != nil {
			return pipeline.RunSpec{}, criteriaError(err)
		}
	}
	spec := cfg.RunSpec()
	spec.DryRun, spec.ReplayOf, spec.Trigger, spec.Profile = req.DryRun, req.ReplayOf, trigger, p.Name
	if req.Weight > 0 {
		spec.Weight = req.Weight
	}
	if err := spec.Validate(); err != nil {
		return spec, refuse(CodeBadRequest, "%v", err)
	}
	return spec, nil
}

// criteriaError turns an error of config.WithCriteria into a refusal.
func criteriaError(err error) *RequestError {
	code := CodeBadRequest
	if errors.Is(err, config.ErrNotCriterion) {
		code = CodeForbidden
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return refuse(code, "%s: %v", ce.Key, ce.Err)
	}
	return refuse(code, "%s", strings.TrimPrefix(err.Error(), "configuration: "))
}
