package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// LocalCluster is a set of tokencache nodes started from a binary on
// loopback, each with a temp data dir, fresh ports and its log in
// <dir>/<node>.log. Close stops them (SIGTERM, then SIGKILL after a grace
// period) and removes the dir unless it was given.
type LocalCluster struct {
	Binary     string
	Dir        string
	AdminToken string
	URLs       []string // http://127.0.0.1:PORT of each node
	procs      []*exec.Cmd
	exited     []chan struct{}
	logs       []string
	rmDir      bool
	rmBinary   string // temp dir of a binary built for the run
}

// spawnStopGrace is how long a node gets to shut down after SIGTERM.
const spawnStopGrace = 20 * time.Second

// StartLocalCluster starts n nodes and waits until every one answers
// /readyz (or ctx is done). env is added to every node's environment
// (TOKENCACHE_<SECTION>_<KEY>=value). binary "" locates or builds one
// (FindBinary). dir "" uses a temp dir.
func StartLocalCluster(ctx context.Context, n int, binary, dir string, env []string) (*LocalCluster, error) {
	lc := &LocalCluster{Dir: dir, AdminToken: token.NewSecret()}
	if dir == "" {
		d, err := os.MkdirTemp("", "tokencache-bench-")
		if err != nil {
			return nil, fmt.Errorf("cannot create a temp dir: %w", err)
		}
		lc.Dir, lc.rmDir = d, true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	if binary == "" {
		b, built, err := FindBinary(ctx)
		if err != nil {
			return nil, errors.Join(err, lc.Close())
		}
		binary = b
		if built {
			lc.rmBinary = filepath.Dir(b)
		}
	}
	lc.Binary = binary
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, errors.Join(err, lc.Close())
	}
	gossip := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[3*i+1]) }
	for i := range n {
		id := "n" + strconv.Itoa(i+1)
		data := filepath.Join(lc.Dir, id)
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, errors.Join(fmt.Errorf("cannot create %s: %w", data, err), lc.Close())
		}
		httpAddr := "127.0.0.1:" + strconv.Itoa(ports[3*i])
		args := []string{"serve",
			"--node-id", id,
			"--data-dir", data,
			"--http-addr", httpAddr,
			"--gossip-addr", gossip(i),
			"--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
			"--bootstrap-expect", strconv.Itoa(n),
			"--log-format", "json",
		}
		if n > 1 {
			var join []string
			for j := range n {
				if j != i {
					join = append(join, gossip(j))
				}
			}
			args = append(args, "--join", strings.Join(join, ","))
		}
		logPath := filepath.Join(lc.Dir, id+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cannot create %s: %w", logPath, err), lc.Close())
		}
		cmd := exec.Command(binary, args...)
		cmd.Env = append(nodeEnviron(), "TOKENCACHE_ADMIN_TOKEN="+lc.AdminToken)
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a ^C of the harness does not hit the nodes first
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return nil, errors.Join(fmt.Errorf("cannot start %s: %w", binary, err), lc.Close())
		}
		logFile.Close() // the child holds its own descriptor
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		lc.procs = append(lc.procs, cmd)
		lc.exited = append(lc.exited, done)
		lc.logs = append(lc.logs, logPath)
		lc.URLs = append(lc.URLs, "http://"+httpAddr)
	}
	if err := lc.waitReady(ctx); err != nil {
		return nil, errors.Join(err, lc.Close())
	}
	return lc, nil
}

// waitReady polls /readyz of every node.
func (lc *LocalCluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	hc := &fasthttp.Client{ReadTimeout: time.Second, WriteTimeout: time.Second}
	ready := make([]bool, len(lc.URLs))
	for {
		all := true
		for i, u := range lc.URLs {
			select {
			case <-lc.exited[i]:
				return fmt.Errorf("node %d exited before it was ready: %s", i+1, lc.logTail(i))
			default:
			}
			if !ready[i] {
				code, _, err := hc.GetTimeout(nil, u+"/readyz", time.Second)
				ready[i] = err == nil && code == fasthttp.StatusOK
			}
			all = all && ready[i]
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			var names []string
			for i, ok := range ready {
				if !ok {
					names = append(names, fmt.Sprintf("n%d (%s)", i+1, lc.logTail(i)))
				}
			}
			return fmt.Errorf("spawned nodes not ready: %s: %w", strings.Join(names, "; "), ctx.Err())
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of node i's log.
func (lc *LocalCluster) logTail(i int) string {
	b, err := os.ReadFile(lc.logs[i])
	if err != nil {
		return "no log: " + err.Error()
	}
	b = bytes.TrimSpace(b)
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return fmt.Sprintf("log %s ends with:\n%s", lc.logs[i], bytes.Join(lines, []byte("\n")))
}

// Close stops every node by pid (SIGTERM, SIGKILL after spawnStopGrace)
// and removes the temp dirs.
func (lc *LocalCluster) Close() error {
	var errs []error
	for i, cmd := range lc.procs {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("cannot stop node %d: %w", i+1, err))
		}
	}
	deadline := time.NewTimer(spawnStopGrace)
	defer deadline.Stop()
	for i, cmd := range lc.procs {
		select {
		case <-lc.exited[i]:
		case <-deadline.C:
			errs = append(errs, fmt.Errorf("node %d did not stop within %v; killed", i+1, spawnStopGrace))
			_ = cmd.Process.Kill()
			<-lc.exited[i]
		}
	}
	lc.procs = nil
	if lc.rmDir && lc.Dir != "" {
		errs = append(errs, os.RemoveAll(lc.Dir))
	}
	if lc.rmBinary != "" {
		errs = append(errs, os.RemoveAll(lc.rmBinary))
	}
	lc.rmDir, lc.rmBinary = false, ""
	return errors.Join(errs...)
}

// FindBinary locates the tokencache binary: this executable when it is
// tokencache, else a tokencache next to it, else one built with `go build`
// from the module in the working directory into a temp dir (built = true:
// the caller removes its dir).
func FindBinary(ctx context.Context) (path string, built bool, err error) {
	if exe, err := os.Executable(); err == nil {
		if filepath.Base(exe) == "tokencache" {
			return exe, false, nil
		}
		if p := filepath.Join(filepath.Dir(exe), "tokencache"); isExecutable(p) {
			return p, false, nil
		}
	}
	return BuildBinary(ctx)
}

// BuildBinary builds ./cmd/tokencache of the tokencache module seen from
// the working directory (the module itself, or the directory the
// bench/baselines module replaces it with) into a temp dir.
func BuildBinary(ctx context.Context) (path string, built bool, err error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", tokencacheModule).Output()
	if err != nil {
		return "", false, fmt.Errorf("cannot build tokencache: cannot find its module (go list -m %s): %w; give --binary", tokencacheModule, err)
	}
	modDir := strings.TrimSpace(string(out))
	if modDir == "" {
		return "", false, errors.New("cannot build tokencache: not inside its module; give --binary")
	}
	dir, err := os.MkdirTemp("", "tokencache-bin-")
	if err != nil {
		return "", false, fmt.Errorf("cannot create a temp dir: %w", err)
	}
	bin := filepath.Join(dir, "tokencache")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tokencache")
	cmd.Dir = modDir
	if msg, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", false, fmt.Errorf("cannot build tokencache: %w: %s", err, bytes.TrimSpace(msg))
	}
	return bin, true, nil
}

// tokencacheModule is the module path of the daemon.
const tokencacheModule = "github.com/tokencache/tokencache"

// nodeEnviron is this process's environment without its TOKENCACHE_
// variables: the daemon refuses unknown ones, and the harness's own
// settings (an admin token, a test DSN) are not the nodes'.
func nodeEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENCACHE_") {
			out = append(out, kv)
		}
	}
	return out
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// freePorts returns n distinct loopback ports that were free for TCP and
// UDP (memberlist gossips on both) a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	var heldUDP []net.PacketConn
	defer func() {
		for _, l := range held {
			l.Close()
		}
		for _, c := range heldUDP {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cannot find a free port: %w", err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // UDP taken: try another
		}
		heldUDP = append(heldUDP, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// spawnTarget starts c.Spawn nodes and returns the HTTP target that drives
// them and stops them at Close.
func spawnTarget(ctx context.Context, c *Config) (*httpTarget, error) {
	env := append([]string(nil), c.SpawnEnv...)
	if capacity := c.cacheCapacity(); capacity > 0 {
		env = append(env, "TOKENCACHE_CACHE_CAPACITY="+strconv.Itoa(capacity))
	}
	removeKeys := func() error { return nil }
	if c.Mix.NeedsJWT() {
		kv, cleanup, err := jwtKeysEnv(c.KeepDir)
		if err != nil {
			return nil, err
		}
		env, removeKeys = append(env, kv...), cleanup
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	lc, err := StartLocalCluster(wctx, c.Spawn, c.Binary, c.KeepDir, env)
	if err != nil {
		return nil, errors.Join(err, removeKeys())
	}
	cc := *c
	cc.AdminToken = lc.AdminToken
	t, err := newHTTPTarget(&cc, lc.URLs, kindTokencache)
	if err != nil {
		return nil, errors.Join(err, lc.Close(), removeKeys())
	}
	t.onClose(removeKeys)
	t.onClose(lc.Close)
	t.cluster = lc
	t.info.Spawned = true
	t.info.Version = binaryVersion(ctx, lc.Binary)
	if capacity := c.cacheCapacity(); capacity > 0 {
		t.info.Notes = fmt.Sprintf("cache.capacity=%d; %s", capacity, t.info.Notes)
	}
	if len(c.SpawnEnv) > 0 {
		t.info.Notes = fmt.Sprintf("env %s; %s", strings.Join(redactEnv(c.SpawnEnv), " "), t.info.Notes)
	}
	return t, nil
}

// redactEnv hides the values of settings that may hold secrets.
func redactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(k)
		if strings.Contains(up, "PASSWORD") || strings.Contains(up, "TOKEN") || strings.Contains(up, "URL") || strings.Contains(up, "KEY") {
			out[i] = k + "=…"
			continue
		}
		out[i] = kv
	}
	return out
}

// binaryVersion returns the first line of `<bin> version`, or "".
func binaryVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.Join(strings.Fields(line), " ")
}
