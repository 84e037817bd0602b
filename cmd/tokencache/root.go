package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokencache/tokencache/bench"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what commands take from the process, so that tests can run them
// in-process with their own input, output and environment.
type env struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ func() []string
	// exit ends the process at once (a second SIGINT/SIGTERM during shutdown).
	exit func(code int)
}

func processEnv() *env {
	return &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ, exit: os.Exit}
}

// getenv returns the value of an environment variable in e.environ.
func (e *env) getenv(name string) string {
	for _, kv := range e.environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCodeError ends the command with a code after the command has already
// reported what happened (e.g. `token validate` of an invalid token).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// execute runs the command line args and returns the exit code.
func execute(ctx context.Context, args []string, e *env) int {
	root := newRootCmd(e)
	started := false
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		started = true // flags and arguments were accepted (cobra checks flag groups later: do not use them)
		return nil
	}
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	var ue usageError
	if !started || errors.As(err, &ue) {
		// Flag parsing, argument counts and unknown commands fail before any
		// command starts.
		fmt.Fprintf(e.stderr, "error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "error: %v\n", err)
	return exitError
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "tokencache",
		Short: "Clustered in-memory token cache",
		Long: `tokencache answers "is this token valid, for whom, with which scopes?" from memory.

Run a node with 'tokencache serve', manage tokens of a running node with
'tokencache token', and check a configuration file with 'tokencache config check'.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(e), newConfigCmd(e), newTokenCmd(e), newVersionCmd(e), newClusterCmd(e), newTLSCmd(e), newJWTCmd(e), bench.NewCommand())
	return root
}

// groupCmd returns a command that only holds subcommands: without one it
// prints its help, with an unknown one it is a usage error.
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// exactArgs is cobra.ExactArgs with a usage error and the names of the
// arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// Output formats of read commands.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// addOutputFlag registers -o/--output on a read command.
func addOutputFlag(cmd *cobra.Command, out *string, def string, allowed ...string) {
	cmd.Flags().StringVarP(out, "output", "o", def, "output format: "+strings.Join(allowed, "|"))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		ok := false
		for _, a := range allowed {
			ok = ok || *out == a
		}
		if !ok {
			return usageErrorf("unknown output format %q (want %s)", *out, strings.Join(allowed, " or "))
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}
