package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	envprovider "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	goyaml "go.yaml.in/yaml/v3"

	"github.com/tokencache/tokencache/persist"
)

// envAliases are extra environment variable names for a key (keySpecs' env),
// besides TOKENCACHE_<SECTION>_<KEY>.
var envAliases = collectEnvAliases()

func collectEnvAliases() map[string]string {
	m := make(map[string]string)
	for _, k := range configKeys {
		if a := keySpecs[k.path].env; a != "" {
			m[a] = k.path
		}
	}
	return m
}

// clientEnv are the TOKENCACHE_ variables that are not configuration keys:
// the command-line client's own settings. Every other TOKENCACHE_ variable
// must name a key, so that a typo is an error rather than a silent default.
var clientEnv = map[string]bool{
	"TOKENCACHE_ADDR":   true, // token commands: the daemon's address
	"TOKENCACHE_CONFIG": true, // --config
}

// Loader builds a Config from, later winning: the defaults, the YAML file,
// the TOKENCACHE_* environment variables and the command-line flags.
type Loader struct {
	// File is the YAML file ("" = none).
	File string
	// Environ returns the environment (nil = os.Environ).
	Environ func() []string
	// Flags are the parsed command-line flags (nil = none); only flags named
	// in FlagKeys and set on the command line are applied.
	Flags *pflag.FlagSet
	// FlagKeys maps a flag name to the key it sets.
	FlagKeys map[string]string
}

// Load returns the merged configuration with derived defaults filled in
// (node.id, persist.url; cluster.join normalised). It does not validate.
//
// A file that cannot be read or parsed is an error and no Config. Unknown
// keys in the file, unknown TOKENCACHE_ variables and values that do not
// parse return the Config that could be built and a Problems error listing
// every one of them (never a secret value).
func (l Loader) Load() (*Config, error) {
	ko := koanf.New(".")
	if err := ko.Load(mapProvider(defaultMap()), nil); err != nil {
		return nil, fmt.Errorf("cannot load defaults: %w", err)
	}
	origin := make(map[string]string) // key path -> where its value came from
	var probs Problems

	if l.File != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(l.File), yaml.Parser()); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("cannot read config file: %w", err)
			}
			var te *goyaml.TypeError
			if errors.As(err, &te) {
				// Its text quotes the content, which may be a secret (an
				// admin.token file passed by mistake).
				return nil, fmt.Errorf("cannot parse config file %s: it is not a YAML mapping of sections (node:, http:, cluster:, …)", l.File)
			}
			return nil, fmt.Errorf("cannot parse config file %s: %w", l.File, err)
		}
		probs = append(probs, checkFileKeys(fk, l.File)...)
		for _, k := range fk.Keys() {
			origin[k] = "in " + l.File
		}
		if err := ko.Merge(fk); err != nil {
			return nil, fmt.Errorf("cannot merge config file %s: %w", l.File, err)
		}
	}

	ek, envProbs, err := loadEnv(l.Environ)
	if err != nil {
		return nil, err
	}
	probs = append(probs, envProbs...)
	for _, k := range ek.Keys() {
		origin[k] = "from " + keysByPath[k].env
	}
	if err := ko.Merge(ek); err != nil {
		return nil, fmt.Errorf("cannot merge environment: %w", err)
	}

	if l.Flags != nil {
		p := posflag.ProviderWithFlag(l.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			key, ok := l.FlagKeys[f.Name]
			if !ok {
				return "", nil
			}
			if f.Changed { // the provider skips unchanged flags after this call
				origin[key] = "from --" + f.Name
			}
			return key, posflag.FlagVal(l.Flags, f)
		})
		if err := ko.Load(p, nil); err != nil {
			return nil, fmt.Errorf("cannot load flags: %w", err)
		}
	}

	cfg := new(Config)
	if err := ko.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{DecoderConfig: decoderConfig(cfg)}); err != nil {
		probs = append(probs, decodeProblems(err, origin)...)
	}
	cfg.resolve()
	if len(probs) > 0 {
		return cfg, probs
	}
	return cfg, nil
}

// resolve fills in the defaults derived from other keys.
func (c *Config) resolve() {
	if c.Node.ID == "" {
		c.Node.ID, _ = os.Hostname()
	}
	if c.Persist.Store == "sqlite" && c.Persist.URL == "" {
		c.Persist.URL = persist.DefaultSQLiteURL // relative: in node.data_dir
	}
	c.Cluster.Join = normalizeJoin(c.Cluster.Join)
	if len(c.Persist.Shards) == 0 {
		c.Persist.Shards = nil
	}
	if len(c.Authz.Rules) == 0 {
		c.Authz.Rules = nil
	}
	if len(c.Tokens.JWT.Trusted) == 0 {
		c.Tokens.JWT.Trusted = nil
	}
}

// normalizeJoin accepts each entry as one address, a comma-separated list,
// or the "tcp://h1:port;h2:port" form, and returns the addresses in order
// without blanks or duplicates.
func normalizeJoin(in []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, entry := range in {
		for _, part := range strings.FieldsFunc(entry, func(r rune) bool { return r == ',' || r == ';' }) {
			part = strings.TrimSpace(part)
			part = strings.TrimPrefix(part, "tcp://")
			if part == "" || seen[part] {
				continue
			}
			seen[part] = true
			out = append(out, part)
		}
	}
	return out
}

// checkFileKeys reports keys of the file that are not configuration keys,
// and removes them (and empty values, which mean "not set") from fk.
func checkFileKeys(fk *koanf.Koanf, name string) Problems {
	var probs Problems
	all := fk.All()
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := all[k]
		if _, ok := keysByPath[k]; ok {
			if v == nil {
				fk.Delete(k) // "key:" with no value: keep the default
			}
			continue
		}
		if isSection(k) {
			if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
				fk.Delete(k) // an empty section, e.g. all keys commented out
				continue
			}
			probs = append(probs, Problem{k, "must be a mapping of keys, not a value (in " + name + ")"})
			fk.Delete(k)
			continue
		}
		if leaf := leafPrefix(k); leaf != "" {
			probs = append(probs, Problem{leaf, "must be a value, not a mapping (in " + name + ")"})
			fk.Delete(leaf)
			continue
		}
		msg := "unknown key (in " + name + ")"
		if s := suggest(k, keyPaths()); s != "" {
			msg += "; did you mean " + s + "?"
		}
		probs = append(probs, Problem{k, msg})
		fk.Delete(k)
	}
	return probs
}

func isSection(k string) bool {
	for _, s := range sectionNames {
		if k == s {
			return true
		}
	}
	return false
}

// leafPrefix returns the leaf key that k is nested under ("http.addr" for
// "http.addr.port"), or "".
func leafPrefix(k string) string {
	for _, key := range configKeys {
		if strings.HasPrefix(k, key.path+".") {
			return key.path
		}
	}
	return ""
}

// loadEnv reads the TOKENCACHE_ variables. Empty values count as unset.
func loadEnv(environ func() []string) (*koanf.Koanf, Problems, error) {
	if environ == nil {
		environ = os.Environ
	}
	var probs Problems
	from := make(map[string]string) // key path -> variable
	raw := make(map[string]string)  // key path -> value
	transform := func(name, val string) (string, any) {
		if val == "" || clientEnv[name] {
			return "", nil
		}
		path, ok := envAliases[name]
		if !ok {
			k, known := keysByEnv[name]
			if !known {
				msg := "unknown environment variable"
				if s := suggest(name, envNames()); s != "" {
					msg += "; did you mean " + s + "?"
				}
				probs = append(probs, Problem{name, msg})
				return "", nil
			}
			path = k.path
		}
		if prev, dup := from[path]; dup && raw[path] != val {
			probs = append(probs, Problem{name, "conflicts with " + prev + " (both set " + path + ", to different values)"})
			return "", nil
		}
		from[path], raw[path] = name, val
		v, err := envValue(keysByPath[path], val)
		if err != nil {
			probs = append(probs, Problem{name, err.Error()})
			return "", nil
		}
		return path, v
	}
	ek := koanf.New(".")
	err := ek.Load(envprovider.Provider(".", envprovider.Opt{Prefix: envPrefix, TransformFunc: transform, EnvironFunc: environ}), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read environment: %w", err)
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].Key < probs[j].Key })
	return ek, probs, nil
}

// envValue converts a variable's text for key k: lists are comma-separated,
// authz.rules and tokens.jwt.trusted are JSON, everything else is decoded like a file value.
func envValue(k keyInfo, val string) (any, error) {
	switch k.typ {
	case stringsType:
		var list []string
		for _, s := range strings.Split(val, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		return list, nil
	case authzRuleType:
		var rules []any
		if err := json.Unmarshal([]byte(val), &rules); err != nil {
			return nil, errors.New(`must be a JSON list such as [{"path_prefix":"/api/","scopes":["read"]}]`)
		}
		return rules, nil
	case trustedType:
		var issuers []any
		if err := json.Unmarshal([]byte(val), &issuers); err != nil {
			return nil, errors.New(`must be a JSON list such as [{"issuer":"https://idp.example.org","jwks_url":"https://idp.example.org/jwks","audiences":["api"]}]`)
		}
		return issuers, nil
	}
	return val, nil
}

// decoderConfig decodes a nested map of keys into cfg, as Load does.
func decoderConfig(cfg *Config) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		DecodeHook:       durationHook,
		WeaklyTypedInput: true, // environment values are strings
		ErrorUnused:      true, // unknown keys inside authz.rules items
		MatchName:        func(a, b string) bool { return a == b },
		TagName:          "koanf",
		Result:           cfg,
	}
}

// decodeMap decodes a nested map of keys into cfg with Load's rules.
func decodeMap(m map[string]any, cfg *Config) error {
	d, err := mapstructure.NewDecoder(decoderConfig(cfg))
	if err != nil {
		return fmt.Errorf("cannot decode configuration: %w", err)
	}
	if err := d.Decode(m); err != nil {
		return fmt.Errorf("cannot decode configuration: %w", err)
	}
	return nil
}

// durationHook decodes Go duration strings ("90s", "60m"). A bare number is
// refused (5 would be 5ns), except 0 and -1 ("never", where a key allows it).
func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if s == "-1" {
			return time.Duration(-1), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write it with a unit: 500ms, 90s, 60m, 24h)", v)
		}
		return d, nil
	case int, int64, uint64, float64:
		n, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
		if n == 0 || n == -1 {
			return time.Duration(n), nil
		}
		return nil, fmt.Errorf("%v is a bare number; write a duration with a unit (e.g. %vs or %vms)", v, v, v)
	}
	return nil, fmt.Errorf("expected a duration such as 90s, got a %s", yamlKind(data))
}

// decodeProblems turns mapstructure's errors into Problems.
func decodeProblems(err error, origin map[string]string) Problems {
	var probs Problems
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if de, ok := e.(*mapstructure.DecodeError); ok {
			key := de.Name()
			msg := decodeMessage(de.Unwrap())
			base, _, _ := strings.Cut(key, "[")
			if o := origin[base]; o != "" {
				msg += " (" + o + ")"
			}
			probs = append(probs, Problem{key, msg})
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
			return
		}
		probs = append(probs, Problem{"", e.Error()})
	}
	walk(err)
	return probs
}

func decodeMessage(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return "not a valid " + typeName(pe.Expected.Type())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return "expected " + typeName(ue.Expected.Type()) + ", got a " + yamlKind(ue.Value)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		return "unknown keys: " + rest
	}
	return msg
}

func typeName(t reflect.Type) string {
	switch {
	case t == secretType:
		return "string"
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Struct:
		return "mapping"
	}
	return t.Kind().String()
}

// yamlKind names the kind of a decoded YAML value without showing it.
func yamlKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "number"
}

// defaultMap returns Default() as a nested map for koanf.
func defaultMap() map[string]any {
	def := Default()
	out := make(map[string]any)
	for _, k := range configKeys {
		v := def.field(k)
		switch k.typ {
		case secretType:
			setPath(out, k.path, v.String())
		default:
			setPath(out, k.path, v.Interface())
		}
	}
	return out
}

// mapProvider is a koanf.Provider of a ready map.
type mapProvider map[string]any

func (m mapProvider) Read() (map[string]any, error) { return m, nil }
func (m mapProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("mapProvider does not support ReadBytes")
}
