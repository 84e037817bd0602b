package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestClassify(t *testing.T) {
	// A port that was free a moment ago: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hc := &fasthttp.HostClient{Addr: addr}
	_, _, refused := hc.Get(nil, "http://"+addr+"/")

	tests := []struct {
		name string
		err  error
		want ErrorKind
	}{
		{"401", statusError(401), KindStatus4xx},
		{"503 wrapped", fmt.Errorf("x: %w", statusError(503)), KindStatus5xx},
		{"302", statusError(302), KindStatusElse},
		{"fasthttp timeout", fasthttp.ErrTimeout, KindTimeout},
		{"context deadline", context.DeadlineExceeded, KindTimeout},
		{"refused", refused, KindConnection},
		{"closed", fasthttp.ErrConnectionClosed, KindConnection},
		{"exhausted", ErrExhausted, KindExhausted},
		{"inactive", ErrInactive, KindInactive},
		{"other", errors.New("boom"), KindOther},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Fatalf("%s: no error to classify", tt.name)
		}
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%s: %v) = %s, want %s", tt.name, tt.err, got, tt.want)
		}
	}
	if a, b := statusError(404), statusError(404); !errors.Is(a, b) {
		t.Error("statusError(404) allocates a new error each call")
	}
}
