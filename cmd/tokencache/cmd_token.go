package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokencache/tokencache/token"
)

// clientFlags are the connection flags of the token commands.
type clientFlags struct {
	addr       string
	adminToken string
	dataDir    string
	timeout    time.Duration
}

func (f *clientFlags) client(e *env, cmd *cobra.Command) *client {
	addr := f.addr
	if !cmd.Flags().Changed("addr") {
		if v := e.getenv("TOKENCACHE_ADDR"); v != "" {
			addr = v
		}
	}
	return &client{
		base:       normalizeAddr(addr),
		http:       newHTTPClient(f.timeout),
		adminToken: adminTokenSource(f.adminToken, e.getenv("TOKENCACHE_ADMIN_TOKEN"), f.dataDir),
	}
}

func newTokenCmd(e *env) *cobra.Command {
	cf := new(clientFlags)
	cmd := groupCmd("token", "Issue, validate, revoke and list tokens on a running node")
	cmd.Long = `Talk to a running node's HTTP API.

The node is --addr (env TOKENCACHE_ADDR, default http://127.0.0.1:8080). Admin
calls (issue, revoke, info, list) send the admin token: --admin-token, else
TOKENCACHE_ADMIN_TOKEN, else the file <--data-dir>/admin.token.`
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.addr, "addr", "http://127.0.0.1:8080", "node HTTP address (env TOKENCACHE_ADDR)")
	pf.StringVar(&cf.adminToken, "admin-token", "", "admin token (env TOKENCACHE_ADMIN_TOKEN; default read from <data-dir>/admin.token)")
	pf.StringVar(&cf.dataDir, "data-dir", "./data", "node data directory holding admin.token")
	pf.DurationVar(&cf.timeout, "timeout", 10*time.Second, "timeout of the request")
	cmd.AddCommand(
		newTokenIssueCmd(e, cf),
		newTokenValidateCmd(e, cf),
		newTokenRevokeCmd(e, cf),
		newTokenInfoCmd(e, cf),
		newTokenListCmd(e, cf),
	)
	return cmd
}

func newTokenIssueCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		req       issueRequest
		uid       int64
		expiresIn time.Duration
		idemKey   string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "issue --username USER [flags]",
		Short: "Issue a token and print it",
		Long: `Issue a token and print its text: the only time it is shown.
With -o json, print the whole answer (the token text and its record).`,
		Example: `  TOKEN=$(tokencache token issue --username alice --scope read:all --expires-in 24h)
  tokencache token issue --username svc --type service --service billing --no-expire -o json
  tokencache token issue --username alice --format jwt --audience api`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Username == "" {
				return usageErrorf("--username is required")
			}
			if _, err := token.ParseType(req.Type); err != nil {
				return usageError{err}
			}
			if req.Format != "" {
				if _, err := token.ParseFormat(req.Format); err != nil {
					return usageError{err}
				}
			}
			for _, s := range req.Scopes {
				if err := token.ValidScope(s); err != nil {
					return usageErrorf("--scope: %v", err)
				}
			}
			if cmd.Flags().Changed("uid") {
				req.UID = &uid
			}
			if cmd.Flags().Changed("expires-in") {
				if req.NoExpire {
					return usageErrorf("--expires-in and --no-expire cannot be combined")
				}
				if expiresIn < time.Second || expiresIn%time.Second != 0 {
					return usageErrorf("--expires-in must be a whole number of seconds, at least 1s (e.g. 90s, 60m, 24h), got %s", expiresIn)
				}
				secs := int64(expiresIn / time.Second)
				req.ExpiresIn = &secs
			}
			ans, err := cf.client(e, cmd).issue(cmd.Context(), req, idemKey)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSON(e.stdout, ans)
			}
			tok, _ := ans["token"].(string)
			if tok == "" {
				return fmt.Errorf("the answer holds no token")
			}
			fmt.Fprintln(e.stdout, tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Username, "username", "", "owner of the token (required)")
	f.StringVar(&req.Realm, "realm", "", "realm of the user (server default: default)")
	f.Int64Var(&uid, "uid", 0, "numeric user id")
	f.StringVar(&req.Type, "type", "user", "session, user, notebook, internal, service or oauth")
	f.StringVar(&req.Name, "name", "", "token name, unique per user among live tokens")
	f.StringArrayVar(&req.Scopes, "scope", nil, "scope granted to the token (repeatable)")
	f.DurationVar(&expiresIn, "expires-in", 0, "lifetime (default tokens.expiry of the server)")
	f.BoolVar(&req.NoExpire, "no-expire", false, "the token never expires (refused while the server's tokens.max_lifetime is set)")
	f.StringVar(&req.Parent, "parent", "", "key of the parent token (revoking the parent revokes this one)")
	f.StringVar(&req.Service, "service", "", "service of an internal token")
	f.StringVar(&req.Format, "format", "", "opaque or jwt (default: the server's tokens.format)")
	f.StringArrayVar(&req.Audience, "audience", nil, "audience (aud) of a JWT, checked against tokens.jwt.audiences (repeatable)")
	f.StringVar(&idemKey, "idempotency-key", "", "retrying with the same key never mints a second token")
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

func newTokenValidateCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		scopes []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "validate [--scope S]... TOKEN|-",
		Short: "Ask whether a token is valid (exit 0) or not (exit 1)",
		Long: `Ask the node whether TOKEN (opaque or a JWT) is valid and, with --scope, holds
every given scope. Use - to read the token from stdin, so that it stays out of shell history.
Exit status 0 when valid, 1 otherwise.`,
		Example: `  tokencache token validate --scope read:all - < token.txt`,
		Args:    exactArgs("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok := args[0]
			if tok == "-" {
				var err error
				if tok, err = readTokenLine(e.stdin); err != nil {
					return err
				}
			}
			if tok == "" {
				return usageErrorf("the token is empty")
			}
			ans, valid, err := cf.client(e, cmd).validate(cmd.Context(), tok, scopes)
			if err != nil {
				return err
			}
			if output == outputJSON {
				err = writeJSON(e.stdout, ans)
			} else {
				err = writeFields(e.stdout, ans, validateFieldOrder)
			}
			if err != nil {
				return err
			}
			if !valid {
				return exitCodeError{exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "scope the token must hold (repeatable; all required)")
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

// readTokenLine reads the first line of r.
func readTokenLine(r io.Reader) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text()), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cannot read the token from stdin: %w", err)
	}
	return "", nil
}

// checkKeyArg refuses a full token where a key is expected: the secret
// would end up in the URL, hence in access logs.
func checkKeyArg(key string) error {
	if strings.Contains(key, ".") {
		return usageErrorf("that looks like a whole token, not a key: pass only the key (between %q and %q), so that the secret stays out of URLs and logs, or - to read the whole token from stdin", "_", ".")
	}
	if key == "" {
		return usageErrorf("the key is empty")
	}
	return nil
}

func newTokenRevokeCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "revoke KEY|-",
		Short: "Revoke a token and all its descendants",
		Long: `Revoke the token with key KEY and all its descendants, and print every revoked key.

With -, read a whole token (opaque, or a JWT of this cluster or of a trusted
issuer) from stdin and revoke it by its text (POST /v1/revoke, RFC 7009); a
JWT is revoked by its jti on every node. An unknown token is not an error.`,
		Example: `  tokencache token revoke K_fsOSJlrvVL_bx70ggyqg
  tokencache token revoke - < jwt.txt`,
		Args: exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "-" {
				tok, err := readTokenLine(e.stdin)
				if err != nil {
					return err
				}
				if tok == "" {
					return usageErrorf("the token is empty")
				}
				if err := cf.client(e, cmd).revokeText(cmd.Context(), tok); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, "revoked")
				return nil
			}
			if err := checkKeyArg(args[0]); err != nil {
				return err
			}
			ans, err := cf.client(e, cmd).revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSON(e.stdout, ans)
			}
			list, _ := ans["revoked"].([]any)
			for _, k := range list {
				fmt.Fprintln(e.stdout, k)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

func newTokenInfoCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "info KEY",
		Short: "Show a token's record (never its secret)",
		Args:  exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkKeyArg(args[0]); err != nil {
				return err
			}
			ans, err := cf.client(e, cmd).info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSON(e.stdout, ans)
			}
			return writeFields(e.stdout, ans, infoFieldOrder)
		},
	}
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

func newTokenListCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		username, typ, output string
		limit                 int
	)
	cmd := &cobra.Command{
		Use:   "list [--username U] [--type T] [--limit N]",
		Short: "List tokens",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != "" {
				if _, err := token.ParseType(typ); err != nil {
					return usageError{err}
				}
			}
			if limit < 0 {
				return usageErrorf("--limit must not be negative")
			}
			list, err := cf.client(e, cmd).list(cmd.Context(), username, typ, limit)
			if err != nil {
				return err
			}
			if output == outputJSON {
				if list == nil {
					list = []object{}
				}
				return writeJSON(e.stdout, list)
			}
			return writeTable(e.stdout, list, listColumns)
		},
	}
	f := cmd.Flags()
	f.StringVar(&username, "username", "", "only tokens of this user")
	f.StringVar(&typ, "type", "", "only tokens of this type")
	f.IntVar(&limit, "limit", 0, "at most this many tokens (0 = the server's default)")
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

// Field orders of the table output; fields the API adds later follow, sorted.
var (
	validateFieldOrder = []string{"active", "error", "key", "username", "realm", "uid", "type", "scopes", "expires"}
	infoFieldOrder     = []string{"key", "state", "type", "format", "username", "realm", "uid", "name", "scopes",
		"service", "parent", "client_id", "created", "expires", "last_used", "revoked_at"}
	listColumns = []string{"key", "type", "username", "name", "scopes", "state", "created", "expires"}
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFields prints an object as aligned "name value" lines.
func writeFields(w io.Writer, o object, order []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	keys := make([]string, 0, len(o))
	for _, k := range order {
		if _, ok := o[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range o {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range append(keys, rest...) {
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(k, o[k]))
	}
	return tw.Flush()
}

// writeTable prints a list of objects under the given columns, leaving out
// columns no row has.
func writeTable(w io.Writer, rows []object, columns []string) error {
	var cols []string
	for _, c := range columns {
		for _, r := range rows {
			if _, ok := r[c]; ok {
				cols = append(cols, c)
				break
			}
		}
	}
	if len(cols) == 0 {
		cols = columns[:1]
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, strings.ToUpper(c))
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell(c, r[c]))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// cell renders one JSON value for a table.
func cell(name string, v any) string {
	switch x := v.(type) {
	case nil:
		if name == "expires" {
			return "never"
		}
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case bool:
		return fmt.Sprint(x)
	case json.Number:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, " ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}
