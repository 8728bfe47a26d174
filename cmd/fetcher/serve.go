package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/service"
	"github.com/pulljobs/pulljobs/pkg/statuspage"
	"github.com/pulljobs/pulljobs/pkg/worker"
)

const serveUsage = `Usage: fetcher serve --profiles DIR [flags]

Serves the profiles of DIR, and starts their runs on request, on events and on
schedules. Each DIR/NAME.yaml is the profile NAME: a configuration exactly as
"fetcher run --config" takes it (secrets through ${ENV}). Any number of
replicas may serve the same profiles; formatters and pushers do the rest.

On request, through the NATS micro service "pulljobs" (nats micro ls|info|stats):

  nats req pulljobs.run.NAME '{}'

  replies {"run_id": "...", "resumed": false} once the run holds its board, or
  an error whose code says why: 400 unreadable request or invalid criteria,
  403 a secret, an endpoint or a section a request may not set, 404 unknown
  or invalid profile, 409 board busy with another run, 503 stopping.
  pulljobs.runs.list ({} or {"limit": N}) and pulljobs.runs.get (payload: a
  run id) answer what "pulljobs status" prints, as JSON.

On events, through the stream PULLJOBS_TRIGGERS, which keeps a trigger until
a replica takes it, even one published while none runs:

  nats pub pulljobs.trigger.NAME '{}' -H Nats-Msg-Id:order-42

  Nats-Msg-Id dedupes a trigger published twice within the profiles'
  pipeline.duplicate_window (1 hour by default). A trigger for a busy board
  waits for it, at most --wait-board. A trigger that can never start its run
  (unknown profile, unreadable body, refused key, invalid criteria, a board
  busy for longer than --wait-board, or too many failed attempts) goes to the
  stream PULLJOBS_DLQ on pulljobs.dlq.trigger.NAME, with its reason in the
  Pulljobs-Reason header. A trigger is acknowledged once its run is fetched:
  a replica that dies mid-fetch leaves it to another, which resumes the run.

On a schedule, with a top-level section of the profile:

  schedule:
    cron: "0 6 * * 1-5"      # five fields, or @hourly, @daily, @every 30m
    timezone: Europe/Paris   # default UTC
    catch_up: once           # once (default): a tick missed while no replica
                             # ran fires once at start; skip: it is forgotten

  Each tick starts exactly one run, however many replicas serve.

The body of a request or a trigger is JSON. {} runs the profile as it is; it
may set "dry_run": true, "replay_of": "<run id>", "weight" (the run's share of
the fleet against the other runs in flight; the profile's
target_parameters.weight otherwise), and "origin_parameters" with
search criteria that replace the profile's (null clears one), e.g.
{"origin_parameters": {"departement": "73", "motsCles": "comptable"}}.
Credentials, endpoint URLs, rate limits and the other sections are refused: a
request never redirects a run nor replaces its credentials.

SIGHUP reads DIR again. An invalid profile is reported with its file and key,
at start and on SIGHUP, and the others are served. SIGTERM (or SIGINT) stops
gracefully: no more requests, triggers or ticks; the fetches in flight finish
within --drain-timeout, then are interrupted, and the next attempt of the same
run resumes it (an interrupted trigger goes back to another replica at once;
a request's run resumes on the next request, trigger or tick of the same
profile and criteria, once the board's lease_ttl has passed).

--http ADDR also serves a status page at /: the runs, their live progress and
why they wait, counters, sync outcome, dead letters and reasons; and at
/backlog, as JSON, what waits for the formatters and the pushers over every
run in flight: the lag signal an autoscaler reads (deploy/k8s).

`

// runServe is `fetcher serve`: it serves until ctx ends, then stops
// gracefully; SIGHUP reloads the profiles.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common   cli.Common
		profiles string
		opts     service.Options
	)
	fs := flag.NewFlagSet("fetcher serve", flag.ContinueOnError)
	common.RegisterNATS(fs)
	fs.StringVar(&profiles, "profiles", "", "`DIR`ectory of the profiles, one NAME.yaml each (required)")
	fs.DurationVar(&opts.WaitBoard, "wait-board", service.DefaultWaitBoard, "how long a trigger or a schedule tick waits for a board busy with another run before it is dead-lettered (requests never wait)")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", service.DefaultDrainTimeout, "on SIGTERM, how long the fetches in flight may finish before they are interrupted")
	common.RegisterHTTP(fs)
	common.RegisterLog(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), serveUsage+cli.TelemetryHelp+"\nFlags:\n"); fs.PrintDefaults() }
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	if profiles == "" {
		return cli.Usagef("--profiles is required (see fetcher serve --help)")
	}
	if fi, err := os.Stat(profiles); err != nil || !fi.IsDir() {
		return cli.Usagef("--profiles %s: not a readable directory", profiles)
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	opts.ProfilesDir, opts.Logger = profiles, logger
	tel, err := common.StartTelemetry(ctx, "pulljobs-fetcher-serve", logger)
	if err != nil {
		return err
	}
	defer tel.Close()
	nc, err := cli.Connect(common.NATS, "pulljobs-fetcher-serve", true, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	opts.FranceTravailLimiter = func(ctx context.Context, clientID string) (francetravail.Limiter, error) {
		hold, err := worker.FranceTravailHold(ctx, nc, clientID)
		if err != nil {
			return nil, err
		}
		return hold, nil
	}
	svc, err := cli.Attach(ctx, nc, func(ctx context.Context) (*service.Service, error) { return service.New(ctx, nc, opts) })
	if err != nil {
		return err
	}
	defer svc.Close()
	if mux := tel.Mux(); mux != nil {
		mux.Handle("GET /{$}", statuspage.Handler(svc.JetStream(), statuspage.Options{Logger: logger}))
		mux.Handle("GET /backlog", statuspage.BacklogHandler(svc.JetStream(), logger))
	}
	tel.Ready(nc)
	stopHUP := onHangup(svc.RequestReload)
	defer stopHUP()
	return svc.Run(ctx)
}

// onHangup calls reload on each SIGHUP until stop, which waits for the
// goroutine that listens.
func onHangup(reload func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-hup:
				reload()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}
