package httpapi

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkDecodeIssueBody and BenchmarkDecodeModifyBody measure reading an
// issue and a modify request body (the checks of body.go, then
// encoding/json).
func BenchmarkDecodeIssueBody(b *testing.B) {
	benchDecode(b, `{"username":"alice","realm":"lab","uid":1001,"type":"user","name":"laptop","scopes":["read","write"],"expires_in":3600}`,
		func() any { return new(issueBody) })
}

func BenchmarkDecodeModifyBody(b *testing.B) {
	benchDecode(b, `{"name":"laptop-2","scopes":["read"],"expires":"2030-01-01T00:00:00Z"}`,
		func() any { return new(modifyBody) })
}

func benchDecode(b *testing.B, body string, v func() any) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBodyString(body)
	b.ReportAllocs()
	for b.Loop() {
		if !decodeJSON(&ctx, v()) {
			b.Fatalf("decodeJSON(%s) failed: %s", body, ctx.Response.Body())
		}
	}
}

// BenchmarkCheckJSONBody is the scan decodeJSON adds before encoding/json.
func BenchmarkCheckJSONBody(b *testing.B) {
	body := []byte(`{"username":"alice","realm":"lab","uid":1001,"type":"user","name":"laptop","scopes":["read","write"],"expires_in":3600}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSONBody(body); err != nil {
			b.Fatal(err)
		}
	}
}
