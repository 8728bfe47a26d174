// Command fetcher publishes one pull_jobs run: it searches France Travail
// with the configuration's criteria, publishes every offer to NATS
// JetStream, and seals the run. Formatter and pusher workers do the rest.
//
//	fetcher run --config pulljobs.yaml [--wait] [--report report.json]
//	fetcher serve --profiles DIR [--http ADDR]
//
// fetcher serve is a long-running fetcher, run by any number of replicas,
// that starts runs of the profiles of DIR on NATS requests, durable
// triggers and schedules (see fetcher serve --help).
//
// With --wait it waits for the run's report, prints it, and exits with the
// run's status: 0 success, 3 success with failures, 1 fatal; 2 means an
// invalid configuration or usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/worker"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err, os.Stderr))
}

const usage = `Usage: fetcher run --config FILE [flags]
       fetcher serve --profiles DIR [flags]   (runs on requests, events and schedules: see fetcher serve --help)

Publishes one pull_jobs run: searches France Travail with the configuration's
origin_parameters, publishes every offer to NATS JetStream, and seals the run.
Formatter and pusher workers format, push and sync it.

A fetch interrupted by a crash or a signal resumes when started again with the
same configuration: the run keeps its id and nothing is published twice.

Started again with the same configuration while its run goes on (sealed or
not), it joins that run: it fetches only if the fetch is unfinished and no
live process is fetching it, and with --wait exits with that run's report.
Once a run has ended, the next invocation starts a new one.

Exit codes, for a scheduler to act on (without --wait, 0 means the run was
published):
` + cli.ExitCodes + `
Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return runServe(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "run" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return cli.Usagef("usage: fetcher run --config FILE [--wait] [--report FILE], or fetcher serve --profiles DIR (see fetcher run --help, fetcher serve --help)")
	}
	var (
		common    cli.Common
		wait      bool
		report    string
		dryRun    bool
		replay    string
		waitBoard time.Duration
	)
	fs := flag.NewFlagSet("fetcher run", flag.ContinueOnError)
	common.Register(fs)
	fs.BoolVar(&wait, "wait", false, "wait for the run's report, print it, and exit with the run's status")
	fs.StringVar(&report, "report", "", "with --wait, write the JSON report to `file` (- for stdout)")
	fs.BoolVar(&dryRun, "dry-run", false, "plan only: report what the run would create, update, unarchive and archive, and write nothing to HrFlow")
	fs.StringVar(&replay, "replay", "", "read the offers stored by an earlier `run` instead of searching France Travail")
	fs.DurationVar(&waitBoard, "wait-board", 0, "how long to wait when the board is busy with another run (default: refuse at once)")
	fs.Usage = cli.UsageFunc(fs, usage)
	if err := cli.Parse(fs, args[1:], stdout); err != nil {
		return err
	}
	if report != "" && !wait {
		return cli.Usagef("--report needs --wait: the report exists once the run is over")
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	role := config.RoleFetcher
	if replay != "" {
		role = config.RoleReplay
	}
	cfg, err := worker.LoadConfig(common.ConfigPath, role)
	if err != nil {
		if report != "" {
			_ = cli.WriteReport(report, worker.ConfigReport(err, cfg.Target.BoardKey), stdout)
		}
		return err
	}
	tel, err := common.StartTelemetry(ctx, "pulljobs-fetcher", logger)
	if err != nil {
		return err
	}
	defer tel.Close()
	p, nc, closeAll, err := worker.Open(ctx, common.NATS, "pulljobs-fetcher", false, pipeline.StageFetch, cfg.Pipeline, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	tel.Ready(nc)
	ft, err := worker.FranceTravail(ctx, cfg, nc, logger)
	if err != nil {
		return err
	}
	spec := cfg.RunSpec()
	spec.DryRun, spec.ReplayOf = dryRun, replay
	id, err := p.Fetch(ctx, spec, ft, pipeline.FetchOptions{WaitBoard: waitBoard})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %s published\n", id)
	if !wait {
		return nil
	}
	return worker.AwaitReport(ctx, p, id, report, stdout, stderr)
}
