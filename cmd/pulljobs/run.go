package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/natsembed"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/worker"
)

const runUsage = `Usage: pulljobs run (--sandbox | --config FILE) [flags]

Runs one pull_jobs run with every stage in this process: fetch the offers
from France Travail, format them, push them into the HrFlow board, and sync
the board. NATS JetStream runs embedded, its data in --data-dir; an
interrupted run resumes when started again with the same configuration.

--sandbox needs no configuration: it starts a France Travail and an HrFlow
emulator in this process, with --synthetic offers and a board that already
holds a few jobs, so that one run shows creation, skipping and archiving.

Started again with the same configuration while its run goes on, or after
a crash, it joins that run instead of starting another, and exits with its
report. Once a run has ended, the next invocation starts a new one.

--listen lets fetchers, formatters and pushers join the embedded server. On
loopback it needs nothing; beyond, it requires the credentials of NATS_USER
and NATS_PASSWORD (or NATS_TOKEN, or their flags), which every process that
joins gives too. With --nats, the same variables, and NATS_CREDS, NATS_NKEY,
NATS_CA, NATS_CERT and NATS_KEY, are how it logs in to that server.

Exit codes, for a scheduler to act on:
` + cli.ExitCodes + `
Flags:
`

type runFlags struct {
	common      cli.Common
	sandbox     bool
	sb          sandboxOptions
	dataDir     string
	natsURL     string
	nats        cli.NATS // credentials and TLS: for --nats, and the embedded server's with --listen
	listen      string
	dryRun      bool
	report      string
	replay      string
	waitBoard   time.Duration
	concurrency int
	progress    bool
	memoryLimit string
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f runFlags
	fs := flag.NewFlagSet("pulljobs run", flag.ContinueOnError)
	fs.StringVar(&f.common.ConfigPath, "config", "", "configuration `file` (YAML; see the README)")
	fs.BoolVar(&f.sandbox, "sandbox", false, "run against emulators started in this process: no configuration, no credentials")
	f.sb.register(fs)
	fs.StringVar(&f.dataDir, "data-dir", "", "where the embedded NATS server keeps its data (default ./pulljobs-data; with --sandbox, a temporary directory)")
	fs.StringVar(&f.natsURL, "nats", "", "use the NATS server at `URL` instead of an embedded one")
	fs.StringVar(&f.listen, "listen", "", "let other processes join the embedded server at this `address` (e.g. 127.0.0.1:4222); beyond loopback, only with credentials")
	f.nats.RegisterAuth(fs)
	fs.BoolVar(&f.dryRun, "dry-run", false, "plan only: report what the run would create, update, unarchive and archive, and write nothing to HrFlow")
	fs.StringVar(&f.report, "report", "", "write the JSON report to `file` (- for stdout)")
	fs.StringVar(&f.replay, "replay", "", "read the offers stored by an earlier `run` instead of searching France Travail")
	fs.DurationVar(&f.waitBoard, "wait-board", 0, "how long to wait when the board is busy with another run (default: refuse at once)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "jobs written to HrFlow at once (default pipeline.concurrency, else 64)")
	fs.BoolVar(&f.progress, "progress", true, "show live progress when stderr is a terminal")
	fs.StringVar(&f.memoryLimit, "memory-limit", defaultMemoryLimit, "soft limit of the process's memory, e.g. 256MiB; 0 for none (ignored when $GOMEMLIMIT is set)")
	f.common.RegisterHTTP(fs)
	f.common.RegisterLog(fs)
	fs.Usage = cli.UsageFunc(fs, runUsage)
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	if f.sandbox == (f.common.ConfigPath != "") {
		return cli.Usagef("give exactly one of --sandbox and --config (see --help)")
	}
	if !f.sandbox {
		var misplaced []string
		fs.Visit(func(fl *flag.Flag) {
			if slices.Contains(sandboxFlags, fl.Name) {
				misplaced = append(misplaced, "--"+fl.Name)
			}
		})
		if len(misplaced) > 0 {
			return cli.Usagef("%s only apply with --sandbox", strings.Join(misplaced, ", "))
		}
	}
	logger, err := f.common.Logger(stderr)
	if err != nil {
		return err
	}
	if err := setMemoryLimit(f.memoryLimit); err != nil {
		return err
	}
	var cfg config.Config
	if f.sandbox {
		f.sb.keptJobs, f.sb.staleJobs = sandboxKeptJobs, sandboxStaleJobs
		sb, err := startSandbox(f.sb, logger)
		if err != nil {
			return err
		}
		defer sb.Close(context.Background())
		cfg = sb.config()
		logger.Info("sandbox started", "offers", sb.offers, "jobs_on_board", sb.seeded, "francetravail", sb.ftURL, "hrflow", sb.hrURL)
	} else {
		role := config.RoleAll
		if f.replay != "" {
			role = config.RoleReplay | config.RolePusher
		}
		if cfg, err = worker.LoadConfig(f.common.ConfigPath, role); err != nil {
			if f.report != "" {
				_ = cli.WriteReport(f.report, worker.ConfigReport(err, cfg.Target.BoardKey), stdout)
			}
			return err
		}
	}
	if f.concurrency > 0 {
		cfg.Pipeline.Concurrency = f.concurrency
	}
	return runPipeline(ctx, f, cfg, logger, stdout, stderr)
}

// The sandbox board's seeded jobs: some that the run keeps (skipped), a few
// whose offers are gone (archived).
const (
	sandboxKeptJobs  = 10
	sandboxStaleJobs = 5
)

// runPipeline runs every stage of one run in this process.
func runPipeline(ctx context.Context, f runFlags, cfg config.Config, logger *slog.Logger, stdout, stderr io.Writer) error {
	tel, err := f.common.StartTelemetry(ctx, "pulljobs", logger)
	if err != nil {
		return err
	}
	defer tel.Close() // last: flushes the spans of the whole run
	dial, exclusive, shutdown, err := connect(f, logger)
	if err != nil {
		return err
	}
	defer shutdown()
	nc, err := dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	// Each stage on a connection of its own, as if in its own process.
	p, err := pipeline.New(ctx, nc, pipeline.Options{Settings: cfg.Pipeline, Logger: logger, Exclusive: exclusive, Dial: dial})
	if err != nil {
		return err
	}
	defer p.Close()
	hr, err := worker.HrFlow(ctx, cfg, nc, logger)
	if err != nil {
		return err
	}
	tel.Ready(nc)
	ft, err := worker.FranceTravail(ctx, cfg, nc, logger)
	if err != nil {
		return err
	}

	// The workers outlive a first signal long enough to finish what they
	// hold: Shutdown, at the end, stops and drains them.
	workers := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var workerErrs []error
	failed := make(chan struct{})
	var failOnce sync.Once
	start := func(run func(context.Context) error) {
		wg.Go(func() {
			if err := run(workers); err != nil {
				mu.Lock()
				workerErrs = append(workerErrs, err)
				mu.Unlock()
				failOnce.Do(func() { close(failed) })
			}
		})
	}
	start(p.RunFormatter)
	start(func(ctx context.Context) error { return p.RunPusher(ctx, hr) })
	defer func() { p.Close(); wg.Wait() }()
	// A worker that fails ends the wait, and the run fails with every
	// worker's error.
	workerErr := func() error {
		mu.Lock()
		defer mu.Unlock()
		return errors.Join(workerErrs...)
	}

	spec := cfg.RunSpec()
	spec.DryRun, spec.ReplayOf = f.dryRun, f.replay
	id, err := p.Fetch(ctx, spec, ft, pipeline.FetchOptions{WaitBoard: f.waitBoard})
	if err != nil {
		return errors.Join(err, workerErr())
	}
	logger.Info("run published", "run", id)
	waitCtx, stopWait := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer stopWait()
	watcher.Go(func() {
		select {
		case <-failed:
			stopWait()
		case <-waitCtx.Done():
		}
	})
	var errOut io.Writer = io.Discard
	if f.progress {
		errOut = stderr
	}
	err = worker.AwaitReport(waitCtx, p, id, f.report, stdout, errOut)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; run the same command again to resume run %s", id)
	case workerErr() != nil:
		return fmt.Errorf("run %s stopped: a worker failed: %w", id, workerErr())
	}
	return err
}

// connect returns how to connect to --nats, or starts the embedded server
// and returns how to connect to it. exclusive says no other process can
// reach the server; shutdown stops it.
func connect(f runFlags, logger *slog.Logger) (dial func() (*nats.Conn, error), exclusive bool, shutdown func(), err error) {
	if f.natsURL != "" {
		n := f.nats
		n.URL = f.natsURL
		return func() (*nats.Conn, error) { return cli.Connect(n, "pulljobs", false, logger) }, false, func() {}, nil
	}
	dir := f.dataDir
	cleanup := func() {}
	if dir == "" && f.sandbox {
		if dir, err = os.MkdirTemp("", "pulljobs-sandbox-"); err != nil {
			return nil, false, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	} else if dir == "" {
		dir = "pulljobs-data"
	}
	opts := natsembed.Options{StoreDir: dir, Logger: logger}
	if f.listen != "" {
		if err := listenOptions(f, &opts); err != nil {
			cleanup()
			return nil, false, nil, err
		}
	}
	srv, err := natsembed.Start(opts)
	if errors.Is(err, natsembed.ErrUnauthenticated) {
		err = cli.Usagef("--listen %s: %v. Set NATS_USER and NATS_PASSWORD (or NATS_TOKEN; or --nats-user and --nats-password) for the server to require, and give the same to the processes that join it; or listen on 127.0.0.1", f.listen, err)
	}
	if err != nil {
		cleanup()
		return nil, false, nil, err
	}
	if f.listen != "" {
		logger.Info("embedded NATS server listening", "url", srv.ClientURL(), "authentication", opts.User != "" || opts.Token != "")
	}
	dial = func() (*nats.Conn, error) {
		return srv.Connect(nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats", "err", err)
		}))
	}
	return dial, f.listen == "", func() { srv.Shutdown(); cleanup() }, nil
}

// listenOptions sets where the embedded server listens, and the
// credentials it requires from every client: those of NATS_USER and
// NATS_PASSWORD, or NATS_TOKEN (or their flags). It serves no TLS and knows
// no nkeys nor JWTs: asked for them, it refuses rather than ignore them.
func listenOptions(f runFlags, opts *natsembed.Options) error {
	host, port, err := splitHostPort(f.listen)
	if err != nil {
		return cli.Usagef("--listen %q: %v", f.listen, err)
	}
	if port == 0 {
		port = -1 // a port the system picks; natsembed's 0 listens nowhere
	}
	opts.Host, opts.Port = host, port
	n := f.nats
	n.Resolve(os.Getenv)
	switch {
	case n.Creds != "" || n.NKey != "":
		return cli.Usagef("--listen: the embedded NATS server takes a user and password, or a token; for credentials files or nkeys, run nats-server (deploy/nats) and pulljobs run --nats")
	case n.CA != "" || n.Cert != "" || n.Key != "":
		return cli.Usagef("--listen: the embedded NATS server serves no TLS; for TLS, run nats-server (deploy/nats) and pulljobs run --nats")
	}
	if _, err := n.Options(); err != nil {
		return err
	}
	opts.User, opts.Password, opts.Token = n.User, n.Password, n.Token
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("want a port number")
	}
	return host, port, nil
}

// defaultMemoryLimit keeps the one-machine product small on a laptop: the
// embedded server, the workers and, with --sandbox, both emulators share
// one process, and the Go heap would otherwise grow to twice what is live.
const defaultMemoryLimit = "160MiB"

// setMemoryLimit sets the Go runtime's soft memory limit from a size like
// "160MiB", unless $GOMEMLIMIT already set one, and lets the collector run
// less often below it (unless $GOGC is set). Past the limit the collector
// works harder; it never makes the process fail.
func setMemoryLimit(size string) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := parseSize(size)
	if err != nil {
		return cli.Usagef("--memory-limit %q: %v", size, err)
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
		if os.Getenv("GOGC") == "" {
			// Under a limit, the collector can wait for more garbage: it
			// runs less often while the heap is small, and the limit still
			// caps it.
			debug.SetGCPercent(gcPercentUnderLimit)
		}
	}
	return nil
}

// gcPercentUnderLimit is the GOGC that goes with the soft memory limit.
const gcPercentUnderLimit = 200

// parseSize reads a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a size such as 128MiB, or 0")
	}
	return n * mult, nil
}
