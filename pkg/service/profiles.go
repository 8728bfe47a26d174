package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/pulljobs/pulljobs/pkg/config"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// ProfileExt is the extension of the profile files of a profiles directory.
const ProfileExt = ".yaml"

// Profile is one configuration of a profiles directory: DIR/annecy.yaml is
// the profile annecy.
type Profile struct {
	Name   string
	Path   string
	Config config.Config
	// ticks says when the schedule fires; nil without a schedule.
	ticks cron.Schedule
	// search is the France Travail client of the profile's credentials.
	search *francetravail.Client
}

// ProfileError is a profile file that could not be used.
type ProfileError struct {
	Name, Path string
	Err        error
}

func (e *ProfileError) Error() string {
	return fmt.Sprintf("profile %s (%s): %v", e.Name, e.Path, e.Err)
}
func (e *ProfileError) Unwrap() error { return e.Err }

// profileSet is the profiles of one reading of the directory.
type profileSet struct {
	valid   map[string]*Profile
	invalid map[string]*ProfileError
}

// names returns the valid profiles' names, sorted.
func (ps *profileSet) names() []string {
	names := make([]string, 0, len(ps.valid))
	for n := range ps.valid {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// closeIdle releases the idle connections of the set's clients; in-flight
// fetches keep theirs.
func (ps *profileSet) closeIdle() {
	for _, p := range ps.valid {
		p.search.CloseIdleConnections()
	}
}

// loadProfiles reads every DIR/*.yaml. A profile that cannot be read,
// validated for a fetcher, or whose pipeline section differs from the
// fleet's settings (want, when set; else the first valid profile's) is
// returned among the invalid ones, and does not stop the others. Each
// profile's France Travail client waits for limiter's limiter of its
// client id, when limiter is not nil. It fails only when dir cannot be
// listed.
func loadProfiles(ctx context.Context, dir string, want *pipeline.Settings, limiter limiterFunc, logger *slog.Logger) (*profileSet, pipeline.Settings, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, pipeline.Settings{}, fmt.Errorf("profiles directory: %w", err)
	}
	ps := &profileSet{valid: map[string]*Profile{}, invalid: map[string]*ProfileError{}}
	var settings pipeline.Settings
	var settingsFrom string
	if want != nil {
		settings, settingsFrom = want.WithDefaults(), "the running service"
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ProfileExt)
		if !ok || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		p, err := loadProfile(ctx, name, path, limiter, logger)
		if err == nil && settingsFrom != "" && p.Config.Pipeline.WithDefaults() != settings {
			err = &config.Error{Key: config.SectionPipeline, Err: fmt.Errorf(
				"differs from %s's: the pipeline section is the fleet's, the same in every profile (restart serve to change it)", settingsFrom)}
		}
		if err != nil {
			ps.invalid[name] = &ProfileError{Name: name, Path: path, Err: err}
			continue
		}
		if settingsFrom == "" {
			settings, settingsFrom = p.Config.Pipeline.WithDefaults(), "profile "+name
		}
		ps.valid[name] = p
	}
	return ps, settings, nil
}

// limiterFunc returns the shared limiter of a France Travail application.
type limiterFunc = func(ctx context.Context, clientID string) (francetravail.Limiter, error)

// loadProfile reads and checks one profile file.
func loadProfile(ctx context.Context, name, path string, limiter limiterFunc, logger *slog.Logger) (*Profile, error) {
	if !validProfileName(name) {
		return nil, errors.New("file name: a profile is named after its file, and the name becomes a NATS subject token: want letters, digits, - and _")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(config.RoleFetcher); err != nil {
		return nil, err
	}
	p := &Profile{Name: name, Path: path, Config: cfg}
	if cfg.Schedule != nil {
		if p.ticks, err = cfg.Schedule.Ticks(); err != nil {
			return nil, err
		}
	}
	fc := cfg.FranceTravail()
	fc.Logger = logger.With("profile", name)
	if limiter != nil {
		if fc.Limiter, err = limiter(ctx, fc.ClientID); err != nil {
			return nil, fmt.Errorf("the France Travail quota's shared limiter: %w", err)
		}
	}
	if p.search, err = francetravail.NewClient(fc); err != nil {
		return nil, &config.Error{Key: config.SectionOrigin, Err: err}
	}
	return p, nil
}

// validProfileName reports whether name can name a profile: like a run id,
// it becomes a subject token (pulljobs.run.<profile>) and a key token.
func validProfileName(name string) bool { return runstatus.ValidRunID(name) }
