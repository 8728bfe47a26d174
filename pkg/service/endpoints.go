package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Names of the NATS micro service and of its subjects.
const (
	ServiceName       = "pulljobs"
	RunSubjectPrefix  = "pulljobs.run." // + <profile>
	RunsListSubject   = "pulljobs.runs.list"
	RunsGetSubject    = "pulljobs.runs.get"
	BoardsListSubject = "pulljobs.boards.list"
	defaultListLimit  = 50
	maxDeadLetters    = 100
	startReplyTimeout = 30 * time.Second
)

// RunReply is the answer to a request that started a run: its id, and
// whether it resumed an interrupted attempt of the same run.
type RunReply struct {
	RunID   string `json:"run_id"`
	Resumed bool   `json:"resumed"`
}

// ListRequest is the optional body of pulljobs.runs.list.
type ListRequest struct {
	// Limit bounds the runs listed, newest first; 0 means 50.
	Limit int `json:"limit,omitempty"`
}

// addMicro registers the micro service and its endpoints; the handlers
// refuse new runs once ctx ends.
func (s *Service) addMicro(ctx context.Context) (micro.Service, error) {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        ServiceName,
		Version:     version(),
		Description: "pulljobs: starts runs of the profiles of `fetcher serve` on request, and tells how runs went",
		Metadata:    map[string]string{"holder": s.holder},
	})
	if err != nil {
		return nil, err
	}
	for _, e := range []struct {
		name, subject, about string
		h                    micro.HandlerFunc
	}{
		{"run", RunSubjectPrefix + "*", `starts a run of the profile: {} or {"dry_run", "replay_of", "weight", "origin_parameters" (search criteria)}; replies {"run_id", "resumed"}`,
			func(r micro.Request) { s.handleRun(ctx, r) }},
		{"runs_list", RunsListSubject, `lists runs, newest first: {} or {"limit": N}; replies {"runs": [...]}`,
			func(r micro.Request) { s.handleList(ctx, r) }},
		{"runs_get", RunsGetSubject, "a run's status, report and dead letters; the payload is the run id",
			func(r micro.Request) { s.handleGet(ctx, r) }},
		{"boards_list", BoardsListSubject, `lists the boards: last run, last successful sync and its age, live jobs, run in flight, next scheduled run; replies {"boards": [...]}`,
			func(r micro.Request) { s.handleBoards(ctx, r) }},
	} {
		if err := svc.AddEndpoint(e.name, e.h, micro.WithEndpointSubject(e.subject),
			micro.WithEndpointMetadata(map[string]string{"description": e.about, "format": "application/json"})); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

// handleRun starts a run for a request on pulljobs.run.<profile>, and
// replies once the run holds its board; the fetch goes on after the reply.
func (s *Service) handleRun(ctx context.Context, r micro.Request) {
	profile := strings.TrimPrefix(r.Subject(), RunSubjectPrefix)
	log := s.log.With("profile", profile, "trigger", runstatus.TriggerRequest)
	st, err := s.startRequest(ctx, profile, r.Data())
	if err != nil {
		re := asRefusal(err)
		log.Warn("request refused", "code", re.Code, "reason", re.Description)
		_ = r.Error(re.Code, re.Description, nil)
		return
	}
	log.Info("run started on request", "run", st.run, "resumed", st.resumed)
	_ = r.RespondJSON(RunReply{RunID: st.run, Resumed: st.resumed})
}

func (s *Service) startRequest(ctx context.Context, profile string, body []byte) (started, error) {
	p, err := s.profile(profile)
	if err != nil {
		return started{}, err
	}
	req, err := ParseRequest(body)
	if err != nil {
		return started{}, err
	}
	spec, err := p.RunSpec(req, runstatus.TriggerRequest)
	if err != nil {
		return started{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, startReplyTimeout)
	defer cancel()
	return s.start(ctx, p, spec)
}

// asRefusal turns any error of starting a run into what a client is told.
func asRefusal(err error) *RequestError {
	var re *RequestError
	var be *pipeline.BusyError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &be):
		return busyRefusal(be)
	}
	return refuse(CodeInternal, "%v", err)
}

func (s *Service) handleList(ctx context.Context, r micro.Request) {
	var lr ListRequest
	if body := bytes.TrimSpace(r.Data()); len(body) > 0 {
		if err := json.Unmarshal(body, &lr); err != nil || lr.Limit < 0 {
			_ = r.Error(CodeBadRequest, `want {} or {"limit": N}`, nil)
			return
		}
	}
	if lr.Limit == 0 {
		lr.Limit = defaultListLimit
	}
	runs, err := runstatus.ListRuns(ctx, s.js, lr.Limit)
	if err != nil {
		_ = r.Error(CodeInternal, err.Error(), nil)
		return
	}
	_ = r.RespondJSON(runstatus.RunList{Runs: runs})
}

func (s *Service) handleGet(ctx context.Context, r micro.Request) {
	run := strings.TrimSpace(string(r.Data()))
	d, err := runstatus.GetRun(ctx, s.js, run, maxDeadLetters)
	switch {
	case errors.Is(err, runstatus.ErrUnknownRun):
		_ = r.Error(CodeNotFound, err.Error(), nil)
	case err != nil:
		_ = r.Error(CodeInternal, err.Error(), nil)
	default:
		_ = r.RespondJSON(d)
	}
}

func (s *Service) handleBoards(ctx context.Context, r micro.Request) {
	boards, err := runstatus.ListBoards(ctx, s.js)
	if err != nil {
		_ = r.Error(CodeInternal, err.Error(), nil)
		return
	}
	_ = r.RespondJSON(runstatus.BoardList{Boards: boards})
}

// version is the module's version when the binary was built from a
// tagged module, which `nats micro info` shows; 0.0.0 otherwise.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := strings.TrimPrefix(bi.Main.Version, "v"); v != "" && v[0] >= '0' && v[0] <= '9' {
			return v
		}
	}
	return "0.0.0"
}
