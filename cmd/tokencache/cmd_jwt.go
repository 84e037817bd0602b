package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/token/jwt"
)

// `tokencache jwt`: the local issuer's signing keys (tokens.jwt.keys_file).
// The commands that change a keys file work on its PEM blocks (so that the
// other keys are kept byte for byte), check the result with the parser serve
// uses, and replace the file atomically with a 0600 file: the running nodes
// reload a complete file or none. Key material is never printed, except the
// new key by keygen without --out.

func newJWTCmd(e *env) *cobra.Command {
	cmd := groupCmd("jwt", "Generate and manage the JWT signing keys (tokens.jwt.keys_file)")
	cmd.Long = `Generate and manage the keys file of the JWT format (tokens.jwt.keys_file).

A key is rotated in three steps, each done on every node's keys file (the
nodes reload it on SIGHUP and within seconds of a change):
  1. tokencache jwt keygen --kid B --out keys.pem      add B, verify only
     (wait until every node has it and relying parties refreshed the JWKS)
  2. tokencache jwt activate --keys-file keys.pem B    B signs from now on
  3. tokencache jwt remove --keys-file keys.pem A      once A's tokens expired
GET /v1/cluster shows each node's key digest (jwt_keys) and jwt_keys_agree.`
	cmd.AddCommand(newJWTKeygenCmd(e), newJWTKeysCmd(e), newJWTActivateCmd(e), newJWTRemoveCmd(e))
	return cmd
}

func newJWTKeygenCmd(e *env) *cobra.Command {
	var alg, kid, out string
	var active bool
	cmd := &cobra.Command{
		Use:   "keygen [--alg EdDSA|ES256|RS256|HS256] [--kid K] [--out FILE] [--active]",
		Short: "Generate a signing key (into a keys file, or on stdout)",
		Long: `Generate a JWT signing key: EdDSA (Ed25519, the default), ES256, RS256 or HS256.

With --out FILE the key is appended to the keys file, or the file is created
(0600) with it as its active key. An appended key verifies only, unless
--active makes it the one that signs (step 2 of a rotation at once: only do
that once every node has the key). Without --out the PEM block is printed.`,
		Example: `  tokencache jwt keygen --out /etc/tokencache/jwt-keys.pem
  tokencache jwt keygen --kid 2026-12 --out /etc/tokencache/jwt-keys.pem`,
		Args: exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			k, err := jwt.GenerateKey(alg, kid)
			if err != nil {
				return usageError{err}
			}
			if out == "" {
				b, err := k.MarshalPEM()
				if active {
					b, err = k.MarshalActivePEM()
				}
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			blocks, existed, err := readKeyBlocks(out)
			if err != nil {
				return err
			}
			for _, b := range blocks {
				if b.Headers["kid"] == k.ID() {
					return usageErrorf("%s already holds a key with kid %q", out, k.ID())
				}
			}
			b, err := k.MarshalPEM()
			if err != nil {
				return err
			}
			nb, _ := pem.Decode(b)
			blocks = append(blocks, nb)
			if active || !existed {
				setActive(blocks, k.ID())
			}
			ks, err := writeKeyBlocks(out, blocks)
			if err != nil {
				return err
			}
			verb := "added"
			if !existed {
				verb = "created " + out + " with"
			}
			fmt.Fprintf(e.stdout, "%s key %s; active key: %s; digest %s\n", verb, k, ks.Active(), ks.Digest())
			if existed && !active {
				fmt.Fprintf(e.stdout, "%s verifies only. Copy %s to every node, then: tokencache jwt activate --keys-file %s %s\n", k.ID(), out, out, k.ID())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", jwt.AlgEdDSA, "algorithm: EdDSA, ES256, RS256 or HS256")
	f.StringVar(&kid, "kid", "", "key id (default: random)")
	f.StringVar(&out, "out", "", "keys file to create or append to (default: print the key)")
	f.BoolVar(&active, "active", false, "make the new key the one that signs")
	return cmd
}

func newJWTActivateCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "activate --keys-file FILE KID",
		Short: "Make KID the key that signs (the others verify only)",
		Args:  exactArgs("KID"),
		RunE: func(_ *cobra.Command, args []string) error {
			return editKeys(e, file, func(blocks []*pem.Block) ([]*pem.Block, error) {
				if findBlock(blocks, args[0]) < 0 {
					return nil, usageErrorf("%s holds no key %q", file, args[0])
				}
				setActive(blocks, args[0])
				return blocks, nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "keys-file", "", "the keys file (required)")
	return cmd
}

func newJWTRemoveCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "remove --keys-file FILE KID",
		Short: "Remove a key that no longer signs (its tokens then fail to verify)",
		Long: `Remove key KID from the keys file. The active key cannot be removed. Tokens
signed with KID stop verifying once the nodes reload: remove a key only after
the longest lifetime of the tokens it signed has passed.`,
		Args: exactArgs("KID"),
		RunE: func(_ *cobra.Command, args []string) error {
			return editKeys(e, file, func(blocks []*pem.Block) ([]*pem.Block, error) {
				i := findBlock(blocks, args[0])
				if i < 0 {
					return nil, usageErrorf("%s holds no key %q", file, args[0])
				}
				if blocks[i].Headers["active"] == "true" {
					return nil, fmt.Errorf("key %q is the active key; activate another first", args[0])
				}
				return append(blocks[:i], blocks[i+1:]...), nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "keys-file", "", "the keys file (required)")
	return cmd
}

// keysOut is what jwt keys -o json writes.
type keysOut struct {
	File   string   `json:"file"`
	Digest string   `json:"digest"`
	Keys   []keyOut `json:"keys"`
	// ValidateOnly: the configuration has trusted issuers and no keys
	// file, so the node signs nothing (File, Digest and Keys are empty).
	ValidateOnly bool `json:"validate_only,omitempty"`
}

type keyOut struct {
	KID     string `json:"kid"`
	Alg     string `json:"alg"`
	Active  bool   `json:"active"`
	CanSign bool   `json:"can_sign"`
}

// writeValidateOnly is jwt keys of a validate-only configuration: no keys,
// which is what the node announces (an empty jwt_keys in GET /v1/cluster).
func writeValidateOnly(e *env, output string) error {
	if output == outputJSON {
		return writeJSON(e.stdout, keysOut{Keys: []keyOut{}, ValidateOnly: true})
	}
	fmt.Fprintln(e.stdout, "no signing keys: this node is validate-only (tokens.jwt.trusted without tokens.jwt.keys_file); it verifies the trusted issuers' JWTs and signs none")
	return nil
}

func newJWTKeysCmd(e *env) *cobra.Command {
	var file, config, output string
	cmd := &cobra.Command{
		Use:   "keys [--keys-file FILE | --config FILE]",
		Short: "List the keys of a keys file: kid, algorithm, active, can sign (never material)",
		Long: `List the keys of a keys file, and its digest (what GET /v1/cluster shows per
node as jwt_keys). The file is --keys-file, or tokens.jwt.keys_file of --config
(or TOKENCACHE_CONFIG and the environment, as serve reads them). A configuration
with tokens.jwt.trusted and no keys file is validate-only: it has no keys, and
the command says so (exit 0).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file != "" && config != "" {
				return usageErrorf("--keys-file and --config cannot be combined")
			}
			if file == "" {
				if config == "" {
					config = e.getenv("TOKENCACHE_CONFIG")
				}
				if config == "" {
					return usageErrorf("name the keys file with --keys-file or a configuration with --config")
				}
				cfg, err := (Loader{File: config, Environ: e.environ}).Load()
				if err != nil {
					return err
				}
				if file = cfg.Tokens.JWT.KeysFile; file == "" {
					if len(cfg.Tokens.JWT.Trusted) > 0 {
						return writeValidateOnly(e, output)
					}
					return fmt.Errorf("%s sets no tokens.jwt.keys_file", config)
				}
			}
			ks, err := jwt.LoadKeySet(file)
			if err != nil {
				return err
			}
			if output == outputJSON {
				out := keysOut{File: file, Digest: ks.Digest(), Keys: []keyOut{}}
				for _, k := range ks.Keys() {
					out.Keys = append(out.Keys, keyOut{k.ID(), k.Alg(), k == ks.Active(), k.CanSign()})
				}
				return writeJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tACTIVE\tCAN-SIGN")
			for _, k := range ks.Keys() {
				fmt.Fprintf(tw, "%s\t%s\t%t\t%t\n", k.ID(), k.Alg(), k == ks.Active(), k.CanSign())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "digest %s\n", ks.Digest())
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "keys-file", "", "the keys file")
	cmd.Flags().StringVarP(&config, "config", "c", "", "configuration whose tokens.jwt.keys_file to list (env TOKENCACHE_CONFIG)")
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

// editKeys changes the PEM blocks of a keys file with edit and writes the
// result back if it is a valid key set.
func editKeys(e *env, file string, edit func([]*pem.Block) ([]*pem.Block, error)) error {
	if file == "" {
		return usageErrorf("--keys-file is required")
	}
	blocks, existed, err := readKeyBlocks(file)
	if err != nil {
		return err
	}
	if !existed {
		return fmt.Errorf("cannot read %s: %w", file, os.ErrNotExist)
	}
	if blocks, err = edit(blocks); err != nil {
		return err
	}
	ks, err := writeKeyBlocks(file, blocks)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %d keys; active key: %s; digest %s\n", file, len(ks.Keys()), ks.Active(), ks.Digest())
	return nil
}

// readKeyBlocks reads the PEM blocks of a keys file; a missing file is no
// blocks (existed false). A JWK set file is not edited here.
func readKeyBlocks(path string) (blocks []*pem.Block, existed bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot read keys file: %w", err)
	}
	defer clear(data)
	rest := bytes.TrimSpace(data)
	if len(rest) > 0 && rest[0] == '{' {
		return nil, true, fmt.Errorf("%s is a JWK set: edit its \"keys\" and \"active\" members by hand (these commands edit PEM keys files)", path)
	}
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, true, fmt.Errorf("%s holds something that is not a PEM block after %d blocks", path, len(blocks))
		}
		blocks = append(blocks, b)
		rest = bytes.TrimSpace(rest)
	}
	return blocks, true, nil
}

// findBlock returns the index of the block of kid, or -1.
func findBlock(blocks []*pem.Block, kid string) int {
	for i, b := range blocks {
		if b.Headers["kid"] == kid {
			return i
		}
	}
	return -1
}

// setActive marks the block of kid active and no other.
func setActive(blocks []*pem.Block, kid string) {
	for _, b := range blocks {
		if b.Headers == nil {
			b.Headers = map[string]string{}
		}
		delete(b.Headers, "active")
		if b.Headers["kid"] == kid {
			b.Headers["active"] = "true"
		}
	}
}

// writeKeyBlocks checks that blocks make a key set (as serve parses it) and
// replaces path with them: a 0600 file written beside it, synced, then
// renamed over it. A missing directory is created (0700).
func writeKeyBlocks(path string, blocks []*pem.Block) (*jwt.KeySet, error) {
	var buf bytes.Buffer
	for _, b := range blocks {
		if err := pem.Encode(&buf, b); err != nil {
			return nil, fmt.Errorf("cannot encode key %q: %w", b.Headers["kid"], err)
		}
	}
	defer clear(buf.Bytes())
	ks, err := jwt.ParseKeySet(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the keys file would not load, so it is left unchanged: %w", err)
	}
	// A keys file reached through a symlink (a mounted secret) is
	// replaced where it lives, and keeps its owner: the daemon reading
	// it may run as another user than this command.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	owner := -1
	var group int
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner, group = int(st.Uid), int(st.Gid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	if owner >= 0 && (owner != os.Getuid() || group != os.Getgid()) {
		if err := tmp.Chown(owner, group); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("cannot give the new keys file the owner of the old one (uid %d, gid %d): %w", owner, group, err)
		}
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("cannot replace keys file: %w", err)
	}
	// The rename is durable once the directory is.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot sync the keys file's directory: %w", err)
		}
	}
	return ks, nil
}
