package main

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/tokencache/tokencache/token/jwt"
)

// keysPollInterval is how often the JWT keys file is checked for a change
// (a stat: its mtime, size and inode).
const keysPollInterval = 2 * time.Second

// keysReloader reloads tokens.jwt.keys_file without a restart: on SIGHUP
// and when the file changes (a new inode, as an atomic rename makes, or a
// new mtime or size). A file that does not load (unreadable, readable by
// others, not a key set, no active key) leaves the keys in use unchanged
// and is logged once per change, by its error, which never quotes key
// material. A loaded set goes to the codec (SetKeys) and its digest to the
// cluster (announced in gossip, shown by GET /v1/cluster).
type keysReloader struct {
	path     string
	codec    *jwt.Codec
	announce func(digest string) // the cluster node's SetJWTKeys; nil = none
	log      *slog.Logger
	interval time.Duration
	stamp    fileStamp // of the file as last loaded or tried
}

// fileStamp tells whether a file changed since it was last looked at.
type fileStamp struct {
	ok    bool
	mtime time.Time
	size  int64
	ino   uint64
	dev   uint64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{ok: true, mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.dev = uint64(sys.Ino), uint64(sys.Dev)
	}
	return st
}

func newKeysReloader(path string, codec *jwt.Codec, announce func(string), log *slog.Logger) *keysReloader {
	return &keysReloader{
		path: path, codec: codec, announce: announce, interval: keysPollInterval,
		log:   log.With("component", "jwt-keys", "keys_file", path),
		stamp: stampOf(path), // as loaded at start
	}
}

// reload reads the keys file now; on success the codec signs and verifies
// with the new set. It reports whether the set was replaced.
func (r *keysReloader) reload(reason string) bool {
	r.stamp = stampOf(r.path)
	old := r.codec.KeySet()
	ks, err := jwt.LoadKeySet(r.path)
	if err != nil {
		r.log.Error("cannot reload the JWT keys file; the keys in use stay", "reason", reason, "err", err,
			"digest", old.Digest(), "active_kid", old.Active().ID())
		return false
	}
	if ks.Digest() == old.Digest() {
		r.log.Info("JWT keys file reloaded; the keys are unchanged", "reason", reason, "digest", ks.Digest())
		return false
	}
	r.codec.SetKeys(ks)
	if r.announce != nil {
		r.announce(ks.Digest())
	}
	kids := make([]string, 0, len(ks.Keys()))
	for _, k := range ks.Keys() {
		kids = append(kids, k.String())
	}
	r.log.Info("JWT keys reloaded", "reason", reason, "digest", ks.Digest(), "previous_digest", old.Digest(),
		"active_kid", ks.Active().ID(), "keys", kids)
	return true
}

// run reloads on every value of hup and whenever a poll sees the file
// changed, until ctx ends. It blocks.
func (r *keysReloader) run(ctx context.Context, hup <-chan os.Signal) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-t.C:
			if st := stampOf(r.path); st != r.stamp {
				r.reload("file changed")
			}
		}
	}
}

// reloadTrusted re-reads tokens.jwt.trusted (SIGHUP) from the sources the
// node started from: the configuration file, the environment and the
// flags, checked as start-up checks them (every key, not only this one: a
// file serve would refuse is never half applied). On success the trusted
// issuers are swapped (jwtFormat.reloadTrusted); otherwise the issuers in
// use stay and the problem is logged (configuration problems never quote
// a secret). Nothing else of the file is applied: the other settings take
// a restart. The trusted issuers are not part of the settings fingerprint
// (each node reads its own JWKS), so a reload never makes nodes refuse
// each other; nodes that trust different issuers answer differently for
// those issuers' tokens until every node is reloaded.
//
// Trusted issuers cannot be added to a node started without JWTs, as its
// token formats are fixed at start.
func (d *daemon) reloadTrusted() {
	if d.source == nil {
		return
	}
	log := d.log.With("component", "jwt-trusted")
	cfg, _, err := loadConfig(*d.source)
	if err != nil && d.jwt == nil {
		return // no issuers to keep or change: the SIGHUP is about other files
	}
	if err != nil {
		log.Error("cannot reload tokens.jwt.trusted: the configuration does not pass its checks; the trusted issuers in use stay", "err", err)
		return
	}
	list := cfg.Tokens.JWT.Trusted
	if d.jwt == nil {
		if len(list) > 0 {
			log.Error("cannot reload tokens.jwt.trusted: this node started without JWTs; restart it to trust issuers")
		}
		return
	}
	if cfg.Tokens.JWT.KeysFile != d.cfg.Tokens.JWT.KeysFile {
		log.Warn("tokens.jwt.keys_file changed in the configuration; that takes a restart (the keys file in use is still reloaded)")
	}
	ch, err := d.jwt.reloadTrusted(list)
	if err != nil {
		log.Error("cannot reload tokens.jwt.trusted; the trusted issuers in use stay", "err", err)
		return
	}
	if ch.none() {
		log.Info("tokens.jwt.trusted reloaded; the trusted issuers are unchanged", "issuers", ch.kept)
		return
	}
	log.Info("tokens.jwt.trusted reloaded", "added", ch.added, "removed", ch.removed, "changed", ch.changed, "kept", ch.kept)
}
