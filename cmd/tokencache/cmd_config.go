package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(e *env) *cobra.Command {
	cmd := groupCmd("config", "Check, show and generate configuration files")
	cmd.AddCommand(newConfigCheckCmd(e), newConfigShowCmd(e), newConfigDefaultCmd(e))
	return cmd
}

func newConfigCheckCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Report every problem of a configuration file",
		Long: `Load FILE the way 'serve' does (defaults, then FILE, then the TOKENCACHE_*
environment variables) and report every problem with its key path.
Exit status 0 when the configuration is valid (warnings may be printed), 1 when not.`,
		Example: "  tokencache config check /etc/tokencache/tokencache.yaml",
		Args:    exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, warns, err := loadConfig(Loader{File: args[0], Environ: e.environ})
			for _, w := range warns {
				fmt.Fprintf(e.stderr, "warning: %s\n", w)
			}
			var ce configError
			if errors.As(err, &ce) {
				fmt.Fprintf(e.stderr, "%s: %s\n", args[0], ce)
				return exitCodeError{exitError}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "configuration is valid")
			return nil
		},
	}
}

func newConfigShowCmd(e *env) *cobra.Command {
	var file, output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration, secrets redacted",
		Long: `Print the configuration 'serve' would use: defaults, then --config FILE (or
TOKENCACHE_CONFIG), then the TOKENCACHE_* environment variables. Secrets are
printed as <redacted>. Problems are reported on stderr (exit status 1).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") {
				file = e.getenv("TOKENCACHE_CONFIG")
			}
			cfg, _, err := loadConfig(Loader{File: file, Environ: e.environ})
			var ce configError
			if err != nil && !errors.As(err, &ce) {
				return err
			}
			if output == outputJSON {
				b, jerr := json.MarshalIndent(cfg.Map(), "", "  ")
				if jerr != nil {
					return jerr
				}
				fmt.Fprintf(e.stdout, "%s\n", b)
			} else {
				header := "Effective tokencache configuration (secrets redacted)."
				if file != "" {
					header = "Effective tokencache configuration from " + file + " (secrets redacted)."
				}
				b, yerr := cfg.YAML(false, header)
				if yerr != nil {
					return yerr
				}
				e.stdout.Write(b)
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "error: %s\n", ce)
				return exitCodeError{exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "YAML configuration file (env TOKENCACHE_CONFIG)")
	addOutputFlag(cmd, &output, outputYAML, outputYAML, outputJSON)
	return cmd
}

const defaultConfigHeader = `tokencache configuration: every key at its default, with what it does.

Sources, later winning: defaults, this file (--config), environment
variables TOKENCACHE_<SECTION>_<KEY> (e.g. TOKENCACHE_PERSIST_URL,
TOKENCACHE_CLUSTER_JOIN=h1:7946,h2:7946), then serve's flags.
Durations are Go durations: 500ms, 90s, 60m, 24h.
Keep secrets out of this file: use TOKENCACHE_ADMIN_TOKEN,
TOKENCACHE_PERSIST_PASSWORD, TOKENCACHE_TOKENS_PEPPER, ... instead.
Check a file with: tokencache config check FILE`

func newConfigDefaultCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "default",
		Short:   "Print a commented configuration file with every default",
		Example: "  tokencache config default > tokencache.yaml",
		Args:    exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			b, err := defaultTemplate().YAML(true, defaultConfigHeader)
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(b)
			return err
		},
	}
}
