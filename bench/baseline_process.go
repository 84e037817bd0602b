package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/token"
)

// The baseline server runs in a process of its own by default, like the
// tokencache node it is compared with: in the load generator's process it
// would share the generator's scheduler, garbage collector and CPU budget,
// and measure lower than a real node (measured here: about the same
// throughput as a spawned node, with twice its p99). --baseline-in-process
// keeps it in-process (tests, or a machine without the binary).

// baselineProcess is a BaselineServer in a child process.
type baselineProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// baselineListening starts the line a baseline server process prints once
// it listens.
const baselineListening = "baseline server listening on "

// startBaselineProcess runs argv (a `bench baseline-server` command line)
// with env added, and waits for the URL it prints.
func startBaselineProcess(ctx context.Context, argv, env []string) (*baselineProcess, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(nodeEnviron(), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the baseline server %s: %w", argv[0], err)
	}
	p := &baselineProcess{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), baselineListening); ok {
				lines <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	select {
	case p.url = <-lines:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("the baseline server %q exited before listening (run from the tokencache binary, or use --baseline-in-process)",
			strings.Join(argv, " "))
	case <-wait.C:
		err = errors.New("the baseline server did not listen within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	return nil, errors.Join(err, p.Close())
}

// Close stops the process by pid (SIGTERM, SIGKILL after 10 s).
func (p *baselineProcess) Close() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cannot stop the baseline server: %w", err)
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("the baseline server did not stop within 10s; killed")
	}
}

// baselineServerName is the hidden command a baseline server process runs.
const baselineServerName = "baseline-server"

// newBaselineProcessTarget starts the baseline-server command of this
// executable (c.BaselineArgs: `tokencache bench baseline-server`, or
// `tokencache-bench baseline-server`) and returns the HTTP target that
// drives it.
func newBaselineProcessTarget(ctx context.Context, c *Config) (*httpTarget, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this executable for the baseline server: %w", err)
	}
	admin := token.NewSecret()
	args := c.BaselineArgs
	if len(args) == 0 {
		args = []string{"bench", baselineServerName}
	}
	argv := append(append([]string{bin}, args...), "--addr", "127.0.0.1:0", "--prefix", c.Prefix)
	p, err := startBaselineProcess(ctx, argv,
		[]string{"TOKENCACHE_BENCH_BASELINE_ADMIN=" + admin})
	if err != nil {
		return nil, err
	}
	return baselineTarget(c, p.url, admin, p.Close, "bare fasthttp server in its own process")
}

// baselineTarget returns the HTTP target of a baseline server at url.
func baselineTarget(c *Config, url, admin string, stop func() error, what string) (*httpTarget, error) {
	cc := *c
	cc.AdminToken = admin
	t, err := newHTTPTarget(&cc, []string{url}, KindBaselineHTTP)
	if err != nil {
		return nil, errors.Join(err, stop())
	}
	t.onClose(stop)
	t.info.Spawned = true
	t.info.Notes = what + " answering from a Go map, same answer size as tokencache (the HTTP ceiling); " + t.info.Notes
	return t, nil
}

// serveBaseline runs a BaselineServer until ctx is done, printing its URL.
func serveBaseline(ctx context.Context, stdout io.Writer, addr, admin, prefix string) error {
	if admin == "" {
		return errors.New("no admin token: set TOKENCACHE_BENCH_BASELINE_ADMIN")
	}
	srv, err := StartBaselineServer(addr, admin, prefix)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, baselineListening+srv.URL())
	<-ctx.Done()
	return srv.Close()
}

// newBaselineServerCommand is the hidden `bench baseline-server`, the
// process --target baseline-http starts.
func newBaselineServerCommand() *cobra.Command {
	var addr, prefix string
	cmd := &cobra.Command{
		Use:    baselineServerName,
		Short:  "Serve the bare baseline HTTP server (started by --target baseline-http)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveBaseline(ctx, cmd.OutOrStdout(), addr, os.Getenv("TOKENCACHE_BENCH_BASELINE_ADMIN"), prefix)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address")
	cmd.Flags().StringVar(&prefix, "prefix", token.DefaultPrefix, "token prefix")
	return cmd
}
