package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "", "version")
	if code != exitOK {
		t.Fatalf("version: exit %d", code)
	}
	for _, want := range []string{"version   dev\n", "commit    ", "go        " + runtime.Version()} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version printed %q, want %q in it", stdout, want)
		}
	}

	old := version
	version = "v1.2.3"
	t.Cleanup(func() { version = old })
	code, stdout, _ = runCLI(t, nil, "", "version", "-o", "json")
	var b buildInfo
	if err := json.Unmarshal([]byte(stdout), &b); code != exitOK || err != nil {
		t.Fatalf("version -o json: exit %d, %q (%v)", code, stdout, err)
	}
	if b.Version != "v1.2.3" || b.GoVersion != runtime.Version() || b.Commit == "" || b.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version -o json = %+v", b)
	}
}
