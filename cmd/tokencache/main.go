// Command tokencache is the clustered in-memory token cache daemon and its
// command-line client: `tokencache serve` runs a node; `token`, `config` and
// `version` talk to one or inspect a configuration. Run `tokencache --help`.
package main

import (
	"context"
	"os"
)

// Build information, set with
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], processEnv()))
}
