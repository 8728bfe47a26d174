// Command formatter is the long-running worker that applies each run's
// format and logics to its offers; "formatter format" tries a format and
// logics on offers read from stdin.
//
//	formatter --nats nats://127.0.0.1:4222 [--config pulljobs.yaml]
//	formatter format [--config pulljobs.yaml] [--format pole_emploi|rich] < offers.ndjson
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
	"github.com/pulljobs/pulljobs/pkg/worker"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err, os.Stderr))
}

const usage = `Usage:
  formatter [--nats URL] [--config FILE]          run a formatter worker
  formatter format [--config FILE] [--format NAME] < offers

The worker applies each run's format and logics (they travel with the run) to
its offers until SIGTERM or SIGINT, then finishes the offers it holds. Its
configuration, optional, only tunes the pipeline section.

"formatter format" reads offers on stdin (NDJSON, a JSON array, or a whole
search response), applies the format and logics of the configuration's
action_parameters (or --format), and writes one job per line on stdout.
Discarded offers are left out; failures go to stderr with the offer id.
Exit codes: 0 all succeeded, 3 some failed, 2 bad configuration.

Flags:
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "format" {
		return runFormat(ctx, args[1:], stdin, stdout, stderr)
	}
	var common cli.Common
	fs := flag.NewFlagSet("formatter", flag.ContinueOnError)
	common.Register(fs)
	fs.Usage = cli.UsageFunc(fs, usage)
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := worker.LoadConfig(common.ConfigPath, config.RoleFormatter)
	if err != nil {
		return err
	}
	tel, err := common.StartTelemetry(ctx, "pulljobs-formatter", logger)
	if err != nil {
		return err
	}
	defer tel.Close()
	p, nc, closeAll, err := worker.Open(ctx, common.NATS, "pulljobs-formatter", true, pipeline.StageFormat, cfg.Pipeline, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	tel.Ready(nc)
	return p.RunFormatter(ctx)
}

func runFormat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var configPath, name string
	fs := flag.NewFlagSet("formatter format", flag.ContinueOnError)
	fs.StringVar(&configPath, "config", "", "configuration `file` whose action_parameters (format and logics) apply")
	fs.StringVar(&name, "format", "", "format `name` to use instead of the configuration's: pole_emploi or rich")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	var spec format.Spec
	if configPath != "" {
		cfg, err := config.Load(configPath)
		if err != nil {
			return err
		}
		spec = cfg.Action
	}
	if name != "" {
		spec.Format = format.FormatSpec{Name: name}
	}
	chain, err := spec.Compile()
	if err != nil {
		return config.ActionError(err)
	}
	switch code := formatOffers(ctx, chain, stdin, stdout, stderr); code {
	case cli.ExitSuccess:
		return nil
	case cli.ExitSuccessWithFailures:
		return &cli.StatusError{Status: runstatus.StatusSuccessWithFailures}
	default:
		return &cli.StatusError{Status: runstatus.StatusFatal}
	}
}
