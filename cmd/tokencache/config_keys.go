package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// The registry of configuration keys, derived once from Config's koanf tags
// and keySpecs, so that the struct is the single list of keys: the file and
// environment checks, the environment names, the defaults, the serve flags,
// `config show` and `config default` all walk it.

// keyInfo describes one leaf key.
type keyInfo struct {
	path  string       // "cluster.bootstrap_expect"
	env   string       // "TOKENCACHE_CLUSTER_BOOTSTRAP_EXPECT"
	index []int        // field index path into Config
	typ   reflect.Type // the field's type
}

// envPrefix starts every environment variable tokencache reads.
const envPrefix = "TOKENCACHE_"

var (
	durationType  = reflect.TypeFor[time.Duration]()
	secretType    = reflect.TypeFor[Secret]()
	stringsType   = reflect.TypeFor[[]string]()
	authzRuleType = reflect.TypeFor[[]AuthzRule]()
	trustedType   = reflect.TypeFor[[]TrustedIssuer]()
)

var (
	// configKeys lists every leaf key in struct order.
	configKeys = checkSpecs(collectKeys())
	// keysByPath and keysByEnv index configKeys.
	keysByPath = indexKeys(func(k keyInfo) string { return k.path })
	keysByEnv  = indexKeys(func(k keyInfo) string { return k.env })
	// sectionNames are the top-level keys, in struct order.
	sectionNames = collectSections()
)

func collectKeys() []keyInfo {
	var keys []keyInfo
	top := reflect.TypeFor[Config]()
	for i := range top.NumField() {
		sec := top.Field(i)
		keys = appendKeys(keys, sec.Type, koanfTag(sec), []int{i})
	}
	return keys
}

// appendKeys appends the keys of struct t under prefix. A field whose type
// is a plain struct (not a value type such as time.Duration) is a group of
// keys one level down ("cluster.tls.ca_file").
func appendKeys(keys []keyInfo, t reflect.Type, prefix string, index []int) []keyInfo {
	for j := range t.NumField() {
		f := t.Field(j)
		path := prefix + "." + koanfTag(f)
		idx := append(slices.Clip(index), j)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			keys = appendKeys(keys, f.Type, path, idx)
			continue
		}
		if _, ok := keySpecs[path]; !ok {
			panic(fmt.Sprintf("config: key %s has no entry in keySpecs", path))
		}
		keys = append(keys, keyInfo{path: path, env: envName(path), index: idx, typ: f.Type})
	}
	return keys
}

// setPath sets the value at the dotted path in a nested map, creating the
// maps on the way.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = make(map[string]any)
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

// checkSpecs panics when keySpecs describes a key Config does not have.
func checkSpecs(keys []keyInfo) []keyInfo {
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k.path] = true
	}
	for path := range keySpecs {
		if !known[path] {
			panic(fmt.Sprintf("config: keySpecs describes %s, which is not a key of Config", path))
		}
	}
	return keys
}

func collectSections() []string {
	var out []string
	top := reflect.TypeFor[Config]()
	for i := range top.NumField() {
		out = append(out, koanfTag(top.Field(i)))
	}
	return out
}

func indexKeys(name func(keyInfo) string) map[string]keyInfo {
	m := make(map[string]keyInfo, len(configKeys))
	for _, k := range configKeys {
		m[name(k)] = k
	}
	return m
}

func koanfTag(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("koanf")
	if !ok || tag == "" {
		panic(fmt.Sprintf("config: field %s has no koanf tag", f.Name))
	}
	return tag
}

// envName returns the environment variable of a key path.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// field returns the value of key k in c.
func (c *Config) field(k keyInfo) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index)
}

// suggest returns the candidate closest to s (edit distance at most 3), or "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 4
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyPaths returns every key path, in struct order.
func keyPaths() []string {
	out := make([]string, len(configKeys))
	for i, k := range configKeys {
		out[i] = k.path
	}
	return out
}

// envNames returns every environment variable name, sorted.
func envNames() []string {
	out := make([]string, 0, len(configKeys)+len(envAliases))
	for _, k := range configKeys {
		out = append(out, k.env)
	}
	for name := range envAliases {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
