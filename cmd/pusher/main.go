// Command pusher is the long-running worker that writes formatted jobs into
// HrFlow boards, and runs the sync stage of the runs it sees complete.
//
//	pusher --nats nats://127.0.0.1:4222 --config pulljobs.yaml
//
// It reads its HrFlow credentials from the configuration's
// target_parameters; the board and the run's options travel with each run.
// All pushers share one HrFlow rate limit (target_parameters.rate_limit).
// SIGTERM or SIGINT stops it gracefully: it finishes the jobs it holds.
package main

import (
	"context"
	"flag"
	"io"
	"os"

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

const usage = `Usage: pusher --config FILE [--nats URL] [flags]

Runs a pusher worker until SIGTERM or SIGINT: it upserts the formatted jobs of
every run into their HrFlow board (create, update, unarchive, or skip), and
runs the final sync stage of each run it sees complete. Start as many as the
HrFlow quota allows: they share target_parameters.rate_limit.

The configuration needs target_parameters.api_secret and api_user; its
pipeline section tunes concurrency, ack wait and retries.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common      cli.Common
		concurrency int
	)
	fs := flag.NewFlagSet("pusher", flag.ContinueOnError)
	common.Register(fs)
	fs.IntVar(&concurrency, "concurrency", 0, "jobs written at once by this process (default pipeline.concurrency, else 64)")
	fs.Usage = cli.UsageFunc(fs, usage)
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := worker.LoadConfig(common.ConfigPath, config.RolePusher)
	if err != nil {
		return err
	}
	if concurrency > 0 {
		cfg.Pipeline.Concurrency = concurrency
	}
	tel, err := common.StartTelemetry(ctx, "pulljobs-pusher", logger)
	if err != nil {
		return err
	}
	defer tel.Close()
	p, nc, closeAll, err := worker.Open(ctx, common.NATS, "pulljobs-pusher", true, pipeline.StagePush, cfg.Pipeline, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	hr, err := worker.HrFlow(ctx, cfg, nc, logger)
	if err != nil {
		return err
	}
	tel.Ready(nc)
	return p.RunPusher(ctx, hr)
}
