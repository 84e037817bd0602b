package main

import (
	"strings"
	"testing"
)

// TestStoreURLPasswordNeverEchoed checks that `config check` and `serve`
// never print a password carried in persist.url, whether in the user:pass@
// form or as a query parameter.
func TestStoreURLPasswordNeverEchoed(t *testing.T) {
	const pw = "S3CRET-DB-PASSWORD"
	for _, u := range []string{
		"jdbc:mysql://tc:" + pw + "@db:3306/tok",
		"jdbc:mysql://db:3306/tok?password=" + pw,
		"jdbc:mysql://db:3306/tok?user=tc&password=" + pw,
		"jdbc:mysql://db:3306/tok?pwd=" + pw,
		"jdbc:mysql://db:3306/tok?PASSWORD=" + pw + "&timeout=%zz",
	} {
		cfg := writeFile(t, "c.yaml", "node:\n  id: n1\n  data_dir: "+t.TempDir()+"\npersist:\n  store: mysql\n  username: tc\n  url: \""+u+"\"\n")
		code, stdout, stderr := runCLI(t, nil, "", "config", "check", cfg)
		if code != exitError {
			t.Errorf("config check with persist.url %q: exit %d, want %d (a password in the URL is refused)", u, code, exitError)
		}
		if strings.Contains(stdout+stderr, pw) {
			t.Errorf("config check with a password in persist.url printed it: %s%s", stdout, stderr)
		}
		code, stderr = serveBriefly(t, []string{"TOKENCACHE_CONFIG=" + cfg}, "--data-dir", t.TempDir())
		if code != exitError {
			t.Errorf("serve with persist.url %q: exit %d, want %d", u, code, exitError)
		}
		if strings.Contains(stderr, pw) {
			t.Errorf("serve with a password in persist.url printed it: %s", stderr)
		}
	}
}
