package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokencache/tokencache/persist"
)

// Rendering of a Config as YAML or as a plain map (for JSON), with secrets
// redacted: the only forms in which a Config is ever printed.

// displayValue returns the printable form of key k of c.
func (c *Config) displayValue(k keyInfo) any {
	v := c.field(k)
	switch {
	case k.typ == secretType:
		return Secret(v.String()).String()
	case k.typ == durationType:
		if d := time.Duration(v.Int()); d == -1 {
			return -1 // "never"
		} else {
			return formatDuration(d)
		}
	case k.path == "persist.url":
		return persist.RedactURL(v.String())
	case k.typ == stringsType:
		list := v.Interface().([]string)
		out := make([]string, len(list))
		for i, s := range list {
			if k.path == "persist.shards" {
				s = persist.RedactURL(s)
			}
			out[i] = s
		}
		return out
	case k.typ == trustedType:
		list := v.Interface().([]TrustedIssuer)
		out := make([]map[string]any, len(list))
		for i, t := range list {
			m := map[string]any{"issuer": t.Issuer, "audiences": orEmpty(t.Audiences)}
			for name, val := range map[string]string{"jwks_file": t.JWKSFile, "jwks_url": persist.RedactURL(t.JWKSURL),
				"username_claim": t.UsernameClaim, "scopes_claim": t.ScopesClaim} {
				if val != "" {
					m[name] = val
				}
			}
			if t.Refresh != 0 {
				m["refresh"] = formatDuration(t.Refresh)
			}
			if len(t.RequiredClaims) > 0 {
				m["required_claims"] = t.RequiredClaims
			}
			out[i] = m
		}
		return out
	case k.typ == authzRuleType:
		rules := v.Interface().([]AuthzRule)
		out := make([]map[string]any, len(rules))
		for i, r := range rules {
			scopes := r.Scopes
			if scopes == nil {
				scopes = []string{}
			}
			out[i] = map[string]any{"path_prefix": r.PathPrefix, "scopes": scopes}
		}
		return out
	}
	return v.Interface()
}

// orEmpty returns list, or an empty list for nil (printed as []).
func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// Map returns c as a nested map of printable values (secrets redacted).
func (c *Config) Map() map[string]any {
	out := make(map[string]any)
	for _, k := range configKeys {
		setPath(out, k.path, c.displayValue(k))
	}
	return out
}

// YAML returns c as YAML in struct order, secrets redacted. With comments,
// every section and key is preceded by its documentation.
func (c *Config) YAML(comments bool, header string) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	groups := map[string]*yaml.Node{} // "cluster", "cluster.tls" -> its mapping
	for _, k := range configKeys {
		parts := strings.Split(k.path, ".")
		parent := root
		for i := range len(parts) - 1 {
			p := strings.Join(parts[:i+1], ".")
			g, ok := groups[p]
			if !ok {
				key := scalar(parts[i])
				if comments {
					key.HeadComment = sectionHelp[p] // "cluster", "cluster.tls"
				}
				g = &yaml.Node{Kind: yaml.MappingNode}
				parent.Content = append(parent.Content, key, g)
				groups[p] = g
			}
			parent = g
		}
		key := scalar(parts[len(parts)-1])
		if comments {
			key.HeadComment = keySpecs[k.path].help
		}
		val := new(yaml.Node)
		if err := val.Encode(c.displayValue(k)); err != nil {
			return nil, fmt.Errorf("cannot encode %s: %w", k.path, err)
		}
		if val.Kind == yaml.SequenceNode && len(val.Content) == 0 {
			val.Style = yaml.FlowStyle // "[]"
		}
		parent.Content = append(parent.Content, key, val)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}, HeadComment: header}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("cannot encode configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot encode configuration: %w", err)
	}
	return spaceSections(buf.Bytes()), nil
}

// spaceSections puts a blank line before each top-level section after the
// first, for a file people read.
func spaceSections(b []byte) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	var out bytes.Buffer
	for i, l := range lines {
		if i > 0 && len(l) > 0 && l[0] != ' ' && l[0] != '\n' && len(lines[i-1]) > 0 && lines[i-1][0] == ' ' {
			out.WriteByte('\n')
		}
		out.Write(l)
	}
	return out.Bytes()
}

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// defaultTemplate returns the defaults as printed by `config default`:
// derived keys are left empty (their comments say what empty means).
func defaultTemplate() *Config {
	c := Default()
	c.Node.ID = ""
	return c
}
