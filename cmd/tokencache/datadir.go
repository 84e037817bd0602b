package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in the data dir whose lock marks the directory
// as in use by one tokencache process.
const lockFileName = "LOCK"

// errDataDirInUse is returned when another process holds the data dir.
var errDataDirInUse = errors.New("data dir is in use by another tokencache process")

// dataDirLock is the exclusive lock of one data dir, held for the life of
// the daemon. Everything in the data dir (the Raft log, whose bbolt lock
// would block forever, the SQLite file, the admin token) belongs to one
// process: a second one fails at once instead of waiting or sharing.
type dataDirLock struct {
	f *os.File
}

// lockDataDir takes the lock of dir without waiting. The lock is an flock on
// <dir>/LOCK, released by the kernel when the process exits however it
// exits, so a stale file never blocks a start; the file holds the pid of
// its holder, for the message.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: %s; stop it, or give this node its own node.data_dir", errDataDirInUse, holder, dir)
		}
		return nil, fmt.Errorf("cannot lock the data dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// release gives the lock up. It is idempotent.
func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
