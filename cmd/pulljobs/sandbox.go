package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/emulator"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail/francetravailtest"
	"github.com/pulljobs/pulljobs/pkg/hrflow/hrflowtest"
)

// sandboxOptions describe the two emulators of a sandbox.
type sandboxOptions struct {
	ftAddr, hrAddr string
	offersFile     string
	synthetic      int
	seed           uint64
	clientID       string
	clientSecret   string
	apiSecret      string
	apiUser        string
	// boardKeys are the boards of the HrFlow account; the first is the one
	// a sandbox run writes to, and the one seeded.
	boardKeys boardKeys
	quota     int           // France Travail calls/s per client; 0 = none
	hrLatency time.Duration // added to every HrFlow call
	errorRate float64       // share of API calls answered 5xx, both APIs
	// hrCapacity is the HrFlow calls/s served in all (0 = no limit), its
	// 429s with a Retry-After when hrRetryAfter.
	hrCapacity   float64
	hrRetryAfter bool
	// hrMaxPage is the largest listing page (0 = the emulator's), and
	// hrRefusePage makes a larger limit a 400 instead of a smaller page.
	hrMaxPage    int
	hrRefusePage bool
	// ftMaxStart is the largest range start of a search (0 = 3000).
	ftMaxStart int
	// staleJobs and keptJobs seed the board: jobs whose offers are gone
	// (archived by sync) and jobs whose offers are live (skipped).
	staleJobs, keptJobs int
}

// sandboxFlags names the flags register adds: they mean something only
// with a sandbox.
var sandboxFlags = []string{"offers", "synthetic", "seed", "client-id", "client-secret", "api-secret", "api-user", "board-key", "quota", "hrflow-latency", "error-rate",
	"hrflow-capacity", "hrflow-retry-after", "hrflow-max-page", "hrflow-refuse-page", "francetravail-max-start"}

// register adds the sandbox's flags to fs; defaults are those of the
// emulators.
func (o *sandboxOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.offersFile, "offers", "", "sandbox: serve the offers of this NDJSON `file` (one offer a line) instead of a synthetic corpus")
	fs.IntVar(&o.synthetic, "synthetic", defaultSynthetic, "sandbox: size of the synthetic corpus of offers")
	fs.Uint64Var(&o.seed, "seed", 1, "sandbox: seed of the synthetic corpus")
	fs.StringVar(&o.clientID, "client-id", francetravailtest.DefaultClientID, "sandbox: France Travail client id the emulator accepts")
	fs.StringVar(&o.clientSecret, "client-secret", francetravailtest.DefaultClientSecret, "sandbox: France Travail client secret the emulator accepts")
	fs.StringVar(&o.apiSecret, "api-secret", hrflowtest.DefaultAPISecret, "sandbox: HrFlow api_secret the emulator accepts")
	fs.StringVar(&o.apiUser, "api-user", hrflowtest.DefaultAPIUser, "sandbox: HrFlow api_user the emulator accepts")
	fs.Var(&o.boardKeys, "board-key", "sandbox: `key` of an HrFlow board the emulator holds, 40 hexadecimal digits; repeat it for several boards of one account, the first seeded (default "+hrflowtest.DefaultBoardKey+")")
	fs.IntVar(&o.quota, "quota", 0, "sandbox: France Travail quota in calls per second per client (0 = none)")
	fs.DurationVar(&o.hrLatency, "hrflow-latency", 0, "sandbox: latency added to every HrFlow call, e.g. 50ms")
	fs.Float64Var(&o.errorRate, "error-rate", 0, "sandbox: share of API calls, on both APIs, answered with a 500, 502 or 503")
	fs.Float64Var(&o.hrCapacity, "hrflow-capacity", 0, "sandbox: HrFlow calls per second served in all, past which calls get 429 (0 = no limit); a run against the sandbox then learns it (rate_limit: auto)")
	fs.BoolVar(&o.hrRetryAfter, "hrflow-retry-after", false, "sandbox: with --hrflow-capacity, the 429s carry a Retry-After")
	fs.IntVar(&o.hrMaxPage, "hrflow-max-page", 0, fmt.Sprintf("sandbox: the largest page of HrFlow's job listing, 1 to %d: a larger limit gets pages of this size (0 = %d)", hrflowtest.MaxListLimit, hrflowtest.MaxListLimit))
	fs.BoolVar(&o.hrRefusePage, "hrflow-refuse-page", false, "sandbox: with --hrflow-max-page, a larger limit is answered 400 instead")
	fs.IntVar(&o.ftMaxStart, "francetravail-max-start", 0, "sandbox: the largest range start France Travail's search serves, at most 3000: past it, the API's 400 (0 = 3000)")
}

const defaultSynthetic = 2000

// boardKeys is a repeatable --board-key.
type boardKeys []string

func (b *boardKeys) String() string { return strings.Join(*b, ",") }

func (b *boardKeys) Set(key string) error {
	if slices.Contains(*b, key) {
		return fmt.Errorf("board %s given twice", key)
	}
	*b = append(*b, key)
	return nil
}

// boardKey is the board a sandbox run writes to: the first one.
func (o *sandboxOptions) boardKey() string {
	if len(o.boardKeys) == 0 {
		return hrflowtest.DefaultBoardKey
	}
	return o.boardKeys[0]
}

// boards are every board of the sandbox's account.
func (o *sandboxOptions) boards() []string {
	if len(o.boardKeys) == 0 {
		return []string{hrflowtest.DefaultBoardKey}
	}
	return o.boardKeys
}

// sandbox is the two emulators, served on loopback.
type sandbox struct {
	ft             *francetravailtest.Emulator
	hr             *hrflowtest.Emulator
	ftURL, hrURL   string
	opts           sandboxOptions
	servers        []*http.Server
	wg             sync.WaitGroup
	offers, seeded int
}

// startSandbox starts both emulators; Close stops them.
func startSandbox(o sandboxOptions, logger *slog.Logger) (*sandbox, error) {
	s := &sandbox{opts: o}
	var corpus francetravailtest.Corpus
	if o.offersFile != "" {
		f, err := os.Open(o.offersFile)
		if err != nil {
			return nil, cli.Usagef("--offers: %v", err)
		}
		corpus, err = francetravailtest.ReadNDJSON(f)
		f.Close()
		if err != nil {
			return nil, cli.Usagef("--offers %s: %v", o.offersFile, err)
		}
	} else {
		if o.synthetic < 0 {
			return nil, cli.Usagef("--synthetic %d: want a size ≥ 0", o.synthetic)
		}
		corpus = francetravailtest.Synthetic(o.synthetic, o.seed, francetravailtest.SyntheticOptions{})
	}
	s.offers = corpus.Len()
	faults := emulator.Config{ErrorRate: o.errorRate}
	var err error
	s.ft, err = francetravailtest.New(francetravailtest.Config{
		ClientID: o.clientID, ClientSecret: o.clientSecret, Quota: o.quota, Faults: faults, Corpus: corpus, MaxStart: o.ftMaxStart,
	})
	if err != nil {
		return nil, cli.Usagef("france travail emulator: %v", err)
	}
	hrFaults := faults
	hrFaults.Latency = emulator.Duration(o.hrLatency)
	hrFaults.Capacity, hrFaults.RetryAfter = o.hrCapacity, o.hrRetryAfter
	s.hr, err = hrflowtest.New(hrflowtest.Config{
		Keys:            []hrflowtest.APIKey{{Secret: o.apiSecret, User: o.apiUser}},
		Boards:          o.boards(),
		Faults:          hrFaults,
		MaxPage:         o.hrMaxPage,
		RefuseLargePage: o.hrRefusePage,
	})
	if err != nil {
		return nil, cli.Usagef("hrflow emulator: %v", err)
	}
	if err := s.seedBoard(corpus); err != nil {
		return nil, err
	}
	if s.ftURL, err = s.serve(o.ftAddr, s.ft, logger); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("france travail emulator: %w", err)
	}
	if s.hrURL, err = s.serve(o.hrAddr, s.hr, logger); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("hrflow emulator: %w", err)
	}
	return s, nil
}

// seedBoard puts kept and stale jobs on the board, so that one run shows
// skipping and archiving next to creation.
func (s *sandbox) seedBoard(corpus francetravailtest.Corpus) error {
	for i := 0; i < s.opts.keptJobs && i < corpus.Len(); i++ {
		job, err := format.PoleEmploi(corpus.Offer(i))
		if err != nil {
			continue
		}
		if _, err := s.hr.SeedJob(s.opts.boardKey(), job, false); err != nil {
			return fmt.Errorf("seed the board: %w", err)
		}
		s.seeded++
	}
	if s.opts.staleJobs == 0 {
		return nil
	}
	for _, offer := range francetravailtest.SyntheticOffers(s.opts.staleJobs, s.opts.seed+1_000_003, francetravailtest.SyntheticOptions{}) {
		id, err := offer.ID()
		if err != nil {
			continue
		}
		if _, live := corpus.Index(id); live {
			continue
		}
		job, err := format.PoleEmploi(offer)
		if err != nil {
			continue
		}
		if _, err := s.hr.SeedJob(s.opts.boardKey(), job, false); err != nil {
			return fmt.Errorf("seed the board: %w", err)
		}
		s.seeded++
	}
	return nil
}

func (s *sandbox) serve(addr string, h http.Handler, logger *slog.Logger) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	s.servers = append(s.servers, srv)
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("emulator stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
	return "http://" + ln.Addr().String(), nil
}

// Close stops both emulators and waits for them.
func (s *sandbox) Close(ctx context.Context) {
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
}

// config returns a configuration that points a run at the sandbox: every
// offer, the default format, no client-side rate limits (the emulators have
// no quota unless asked), and with an HrFlow capacity, a rate learned.
func (s *sandbox) config() config.Config {
	unlimited := 0.0
	var c config.Config
	c.Origin.ClientID, c.Origin.ClientSecret = s.opts.clientID, s.opts.clientSecret
	c.Origin.APIBaseURL = francetravailtest.APIBaseURL(s.ftURL)
	c.Origin.TokenURL = francetravailtest.TokenURL(s.ftURL)
	c.Origin.RateLimit = &unlimited
	if s.opts.quota > 0 {
		q := float64(s.opts.quota)
		c.Origin.RateLimit = &q
	}
	c.Target.APISecret, c.Target.APIUser, c.Target.BoardKey = s.opts.apiSecret, s.opts.apiUser, s.opts.boardKey()
	c.Target.APIBaseURL = hrflowtest.BaseURL(s.hrURL)
	c.Target.RateLimit = &config.HrFlowRate{Auto: s.opts.hrCapacity > 0}
	return c
}

// describe prints what a user needs to point pulljobs at the sandbox.
func (s *sandbox) describe(w io.Writer) {
	fmt.Fprintf(w, `pulljobs sandbox: %d offers, %d jobs on the first board

France Travail emulator
  API base URL   %s
  token URL      %s
  client_id      %s
  client_secret  %s
  admin          %s/_emulator/stats, /_emulator/faults, PUT /_emulator/offers

HrFlow emulator
  API base URL   %s
  api_secret     %s
  api_user       %s
  board_keys     %s
  admin          %s/_emulator/stats, /_emulator/faults

A configuration for it:

origin_parameters:
  client_id: %s
  client_secret: %s
  api_base_url: %s
  token_url: %s
  rate_limit: 0
target_parameters:
  api_secret: %s
  api_user: %s
  board_key: %s
  api_base_url: %s
  rate_limit: %s
`,
		s.offers, s.seeded,
		francetravailtest.APIBaseURL(s.ftURL), francetravailtest.TokenURL(s.ftURL), s.opts.clientID, s.opts.clientSecret, s.ftURL,
		hrflowtest.BaseURL(s.hrURL), s.opts.apiSecret, s.opts.apiUser, strings.Join(s.opts.boards(), " "), s.hrURL,
		s.opts.clientID, s.opts.clientSecret, francetravailtest.APIBaseURL(s.ftURL), francetravailtest.TokenURL(s.ftURL),
		s.opts.apiSecret, s.opts.apiUser, s.opts.boardKey(), hrflowtest.BaseURL(s.hrURL), s.config().Target.RateLimit)
}

const sandboxUsage = `Usage: pulljobs sandbox --francetravail-addr 127.0.0.1:PORT --hrflow-addr 127.0.0.1:PORT [flags]

Serves a France Travail emulator and an HrFlow emulator until SIGINT or
SIGTERM, and prints their URLs and the credentials they accept. Point
fetchers and pushers at them to try pulljobs, or to test a deployment,
without real credentials.

Flags:
`

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		o      sandboxOptions
		common cli.Common
	)
	fs := flag.NewFlagSet("pulljobs sandbox", flag.ContinueOnError)
	fs.StringVar(&o.ftAddr, "francetravail-addr", "127.0.0.1:0", "`address` of the France Travail emulator")
	fs.StringVar(&o.hrAddr, "hrflow-addr", "127.0.0.1:0", "`address` of the HrFlow emulator")
	fs.IntVar(&o.staleJobs, "stale-jobs", 0, "jobs to put on the board whose offers are not in the corpus")
	o.register(fs)
	common.RegisterLog(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), sandboxUsage); fs.PrintDefaults() }
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	logger, err := common.Logger(stderr)
	if err != nil {
		return err
	}
	s, err := startSandbox(o, logger)
	if err != nil {
		return err
	}
	s.describe(stdout)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Close(shutdown)
	return nil
}
