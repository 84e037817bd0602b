// Package e2e holds process-level end-to-end tests: they build the real
// tokencache binary, run it on loopback with temporary data directories,
// drive it over HTTP (directly and through a real nginx), and stop it with
// real signals. Run them with `make test`, which installs and starts what
// they need.
package e2e
