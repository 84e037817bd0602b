package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/token/jwt"
)

// pemKeys returns the PEM of keys, the one of active marked active.
func pemKeys(t *testing.T, active string, keys ...*jwt.Key) []byte {
	t.Helper()
	var out []byte
	for _, k := range keys {
		var b []byte
		var err error
		if k.ID() == active {
			b, err = k.MarshalActivePEM()
		} else {
			b, err = k.MarshalPEM()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// replaceFile writes data to path the way operators should: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mustKey(t *testing.T, alg, kid string) *jwt.Key {
	t.Helper()
	k, err := jwt.GenerateKey(alg, kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeysReloader checks the reload of the keys file: a change is picked
// up by the poll and announced; a file that does not load keeps the keys
// in use and is logged without its content; SIGHUP reloads at once.
func TestKeysReloader(t *testing.T) {
	a, b := mustKey(t, jwt.AlgEdDSA, "a"), mustKey(t, jwt.AlgES256, "b")
	path := filepath.Join(t.TempDir(), "keys.pem")
	replaceFile(t, path, pemKeys(t, "a", a), 0o600)
	ks, err := jwt.LoadKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Tokens.JWT.Issuer = "https://auth.example.org"
	codec, err := jwt.New(jwtConfig(cfg), ks)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var announced []string
	var logs lockedLog
	r := newKeysReloader(path, codec, func(d string) { mu.Lock(); announced = append(announced, d); mu.Unlock() },
		slog.New(slog.NewTextHandler(&logs, nil)))
	r.interval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { r.run(ctx, hup); close(done) }()
	defer func() { cancel(); <-done }()

	waitDigest := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for codec.KeySet().Digest() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: digest = %s, want %s\nlogs:\n%s", what, codec.KeySet().Digest(), want, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Step 1 of a rotation: b added, verify only.
	replaceFile(t, path, pemKeys(t, "a", a, b), 0o600)
	ab, _ := jwt.NewKeySet("a", a, b)
	waitDigest("b added", ab.Digest())
	if k, ok := codec.KeySet().Key("b"); !ok || codec.KeySet().Active().ID() != "a" || k.ID() != "b" {
		t.Fatalf("after adding b: active %s, b known %v", codec.KeySet().Active().ID(), ok)
	}

	// A file that is not a key set: the keys stay, the error is logged
	// without the content.
	replaceFile(t, path, []byte("-----BEGIN PRIVATE KEY-----\nkid: a\n\nU0VDUkVULU1BVEVSSUFM\n-----END PRIVATE KEY-----\n"), 0o600)
	waitLog(t, &logs, "cannot reload the JWT keys file")
	if got := codec.KeySet().Digest(); got != ab.Digest() {
		t.Errorf("after a bad file: digest = %s, want the old %s", got, ab.Digest())
	}
	if strings.Contains(logs.String(), "U0VDUkVULU1BVEVSSUFM") {
		t.Errorf("the log quotes the keys file:\n%s", logs.String())
	}

	// A file others can read is refused too.
	replaceFile(t, path, pemKeys(t, "b", a, b), 0o644)
	waitLog(t, &logs, "chmod 600")
	if got := codec.KeySet().Active().ID(); got != "a" {
		t.Errorf("after a world-readable file: active = %s, want a", got)
	}

	// Step 2: b active. Written in place with the same size would not
	// fool the poll either (mtime), but SIGHUP reloads at once anyway.
	if err := os.WriteFile(path, pemKeys(t, "b", a, b), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o600)
	hup <- syscall.SIGHUP
	ba, _ := jwt.NewKeySet("b", a, b)
	waitDigest("b active", ba.Digest())
	for _, k := range []*jwt.Key{a, b} {
		for _, line := range strings.Split(string(pemKeys(t, "", k)), "\n") {
			if len(line) >= 16 && !strings.Contains(line, ":") && !strings.HasPrefix(line, "-----") && strings.Contains(logs.String(), line) {
				t.Errorf("the log holds key material of %s:\n%s", k, logs.String())
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(announced) != 2 || announced[0] != ab.Digest() || announced[1] != ba.Digest() {
		t.Errorf("announced %v, want [%s %s]", announced, ab.Digest(), ba.Digest())
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitLog(t *testing.T, l *lockedLog, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
