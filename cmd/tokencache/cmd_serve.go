package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// serveFlagKeys maps each serve flag to the configuration key it sets
// (keySpecs' flag names).
var serveFlagKeys = collectFlagKeys()

func collectFlagKeys() map[string]string {
	m := make(map[string]string)
	for _, k := range configKeys {
		if f := keySpecs[k.path].flag; f != "" {
			m[f] = k.path
		}
	}
	return m
}

// addKeyFlags defines a flag for every key whose spec names one, in key
// order. Its usage is the first sentence of the key's help, the key and its
// default; the flag's own default stays empty, so that only a flag set on
// the command line overrides the file and the environment.
func addKeyFlags(f *pflag.FlagSet) {
	for _, k := range configKeys {
		spec := keySpecs[k.path]
		if spec.flag == "" {
			continue
		}
		usage, _, _ := strings.Cut(strings.ReplaceAll(spec.help, "\n", " "), ". ")
		usage = strings.ToLower(usage[:1]) + strings.TrimSuffix(usage[1:], ".") + " (" + k.path
		if spec.def != "" {
			usage += "; default " + spec.def
		}
		usage += ")"
		switch k.typ.Kind() {
		case reflect.String:
			f.String(spec.flag, "", usage)
		case reflect.Int:
			f.Int(spec.flag, 0, usage)
		case reflect.Slice:
			f.StringSlice(spec.flag, nil, usage+"; comma-separated, repeatable")
		default:
			panic(fmt.Sprintf("config: no flag type for key %s (%s)", k.path, k.typ))
		}
	}
}

func newServeCmd(e *env) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a tokencache node",
		Long: `Run a tokencache node until SIGINT or SIGTERM (a second signal exits at once).

Configuration, later sources winning: defaults, the YAML file (--config or
TOKENCACHE_CONFIG), TOKENCACHE_<SECTION>_<KEY> environment variables
(e.g. TOKENCACHE_PERSIST_URL; lists comma-separated), then these flags.
Every problem of the configuration is reported before anything starts.`,
		Example: `  tokencache serve --config configs/tokencache.yaml
  tokencache serve --node-id n2 --data-dir ./data/n2 --http-addr 127.0.0.1:8082 \
      --join 127.0.0.1:7947 --bootstrap-expect 3`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") {
				configFile = e.getenv("TOKENCACHE_CONFIG")
			}
			return serve(cmd.Context(), e, Loader{
				File:     configFile,
				Environ:  e.environ,
				Flags:    cmd.Flags(),
				FlagKeys: serveFlagKeys,
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "YAML configuration file (env TOKENCACHE_CONFIG)")
	addKeyFlags(f)
	return cmd
}

// serve loads and validates the configuration, then runs the node.
func serve(ctx context.Context, e *env, l Loader) error {
	cfg, warns, err := loadConfig(l)
	if err != nil {
		return err
	}
	log, _, err := newLogger(e.stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err // already checked by Validate
	}
	log = log.With("node", cfg.Node.ID)
	for _, w := range warns {
		log.Warn("configuration warning", "key", w.Key, "warning", w.Msg)
	}
	log.Info("starting tokencache", "version", version, "commit", commit, "config", l.File)

	ctx, stop := watchSignals(ctx, log, e.exit)
	defer stop()
	if err := run(ctx, cfg, &l, log); err != nil {
		log.Error("tokencache stopped", "error", err)
		return exitCodeError{exitError}
	}
	log.Info("tokencache stopped")
	return nil
}

// loadConfig loads a configuration and validates it, returning its warnings
// and, as an error, every problem: those of loading (unknown keys, values
// that do not parse) and those of Validate.
func loadConfig(l Loader) (*Config, Problems, error) {
	cfg, err := l.Load()
	var probs Problems
	if err != nil && !errors.As(err, &probs) {
		return nil, nil, err
	}
	loadProbs := probs
	errs, warns := cfg.check()
	errs = append(errs, cfg.checkAdminTokenFile()...)
	for _, p := range errs {
		if !reportedKey(loadProbs, p.Key) {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return cfg, warns, configError{probs}
	}
	return cfg, warns, nil
}

// reportedKey reports whether a load problem already concerns key (a value
// that did not parse also fails validation: say it once).
func reportedKey(probs Problems, key string) bool {
	for _, p := range probs {
		if p.Key == key || strings.HasPrefix(key, p.Key+"[") || strings.HasPrefix(key, p.Key+".") || p.Key == keysByPath[key].env && p.Key != "" {
			return true
		}
	}
	return false
}

// configError is an invalid configuration: every problem, one per line.
type configError struct{ probs Problems }

func (e configError) Error() string {
	n := len(e.probs)
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf("invalid configuration (%d problem%s):\n  %s", n, s, strings.ReplaceAll(e.probs.Error(), "\n", "\n  "))
}

func (e configError) Unwrap() error { return e.probs }

// parseLevel parses a log level name.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// newLogger returns the daemon's logger on w: JSON, or text when format is
// "text" or empty and w is a terminal. The LevelVar allows changing the
// level at run time.
func newLogger(w io.Writer, level, format string) (*slog.Logger, *slog.LevelVar, error) {
	lv, err := parseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	v := new(slog.LevelVar)
	v.Set(lv)
	opts := &slog.HandlerOptions{Level: v}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), v, nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), v, nil
	}
	return nil, nil, fmt.Errorf("unknown log format %q", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// watchSignals returns a context cancelled by the first SIGINT or SIGTERM;
// a second one calls exit(1) at once. stop releases the signals.
func watchSignals(parent context.Context, log *slog.Logger, exit func(int)) (ctx context.Context, stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	ctx, done := handleSignals(parent, ch, log, exit)
	return ctx, func() {
		signal.Stop(ch)
		done()
	}
}

// handleSignals implements watchSignals over a channel of signals.
func handleSignals(parent context.Context, sigs <-chan os.Signal, log *slog.Logger, exit func(int)) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case sig := <-sigs:
			log.Info("shutting down; send the signal again to exit at once", "signal", sig.String())
			cancel(fmt.Errorf("received %v", sig))
		case <-quit:
			return
		}
		select {
		case sig := <-sigs:
			log.Warn("exiting at once", "signal", sig.String())
			exit(exitError)
		case <-quit:
		}
	}()
	var once bool
	return ctx, func() {
		if !once {
			once = true
			close(quit)
			<-finished
			cancel(context.Canceled)
		}
	}
}
