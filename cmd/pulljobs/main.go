// Command pulljobs is the one-machine product: it runs every stage of
// pull_jobs — fetch, format, push, sync — in one process, on an embedded
// NATS server, and serves the sandbox emulators.
//
//	pulljobs run --sandbox                  try it: emulators, synthetic offers, no credentials
//	pulljobs run --config pulljobs.yaml     a real run
//	pulljobs sandbox --francetravail-addr 127.0.0.1:8081 --hrflow-addr 127.0.0.1:8082
//	pulljobs status [--nats URL] [--json] [RUN]   the runs NATS keeps, or one
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pulljobs/pulljobs/pkg/cli"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err, os.Stderr))
}

const usage = `Usage:
  pulljobs run --sandbox [flags]          run on emulators with synthetic offers
  pulljobs run --config FILE [flags]      run every stage in this process
  pulljobs sandbox [flags]                serve the emulators
  pulljobs status [flags] [RUN]           list the runs, or show one

Run "pulljobs run --help", "pulljobs sandbox --help" or "pulljobs status --help"
for their flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.Usagef("no command")
	}
	switch args[0] {
	case "run":
		return runRun(ctx, args[1:], stdout, stderr)
	case "sandbox":
		return runSandbox(ctx, args[1:], stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return cli.Usagef("unknown command %q (want run, sandbox or status)", args[0])
}
