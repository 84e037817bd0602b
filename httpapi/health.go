package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// GET /healthz, GET /readyz and GET /metrics: for probes and scrapers, no
// admin token.

// handleHealthz is liveness: 200 while the process serves HTTP. It checks
// nothing else on purpose (restarting a node does not fix a lost leader or
// a store outage; etcd's /livez makes the same choice).
func (s *Server) handleHealthz(ctx *fasthttp.RequestCtx) {
	writeRaw(ctx, fasthttp.StatusOK, `{"status":"ok"}`)
}

// handleReadyz is readiness: 200 when the node has started, joined and
// caught up (Tokens.Ready) and is not draining; 503 with the reason
// otherwise. It stays 200 when the node later loses contact with the leader
// and answers "stale": a gateway pod must not leave its Service because the
// cluster lost its leader (every node would at once); ?leader=required is
// the strict form.
// ?verbose lists every check.
//
//	200 {"status":"ok"}
//	503 {"status":"unavailable","error":"draining|<code>","message":"…"}
//	?verbose adds "checks":[{"name":"draining","ok":…},{"name":"tokens","ok":…,"message":…}]
func (s *Server) handleReadyz(ctx *fasthttp.RequestCtx) {
	type check struct {
		name, code, message string
	}
	var failed []check
	checks := []check{{name: "draining"}, {name: "tokens"}}
	if s.cfg.LeaderCheck != nil && string(ctx.QueryArgs().Peek("leader")) == "required" {
		checks = append(checks, check{name: "leader"})
		lctx, lcancel := s.requestContext()
		if err := s.cfg.LeaderCheck(lctx); err != nil {
			checks[2].code, checks[2].message = "no_leader", err.Error()
		}
		lcancel()
	}
	if !s.ready.Load() {
		checks[0].code, checks[0].message = "draining", "the node is shutting down or draining"
		failed = append(failed, checks[0])
	}
	rctx, cancel := s.requestContext()
	err := s.svc.Ready(rctx)
	cancel()
	if err != nil {
		_, code, _ := errorStatus(err)
		if code == codeInternal {
			code = "not_ready"
		}
		// The service's readiness error is written as a reason for
		// operators (warm start, catching up, …).
		checks[1].code, checks[1].message = code, err.Error()
		failed = append(failed, checks[1])
	}
	if len(checks) > 2 && checks[2].code != "" {
		failed = append(failed, checks[2])
	}

	status := fasthttp.StatusOK
	b := beginBody(ctx)
	if len(failed) == 0 {
		b = append(b, `{"status":"ok"`...)
	} else {
		status = fasthttp.StatusServiceUnavailable
		b = append(b, `{"status":"unavailable","error":`...)
		b = appendString(b, failed[0].code)
		b = append(b, `,"message":`...)
		b = appendString(b, failed[0].message)
	}
	if ctx.QueryArgs().Has("verbose") {
		b = append(b, `,"checks":[`...)
		for i, c := range checks {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, c.name)
			if c.code == "" {
				b = append(b, `,"ok":true}`...)
				continue
			}
			b = append(b, `,"ok":false,"error":`...)
			b = appendString(b, c.code)
			b = append(b, `,"message":`...)
			b = appendString(b, c.message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	ctx.SetStatusCode(status)
	endBody(ctx, append(b, '}'))
}

// metricsHandler serves the Prometheus text format from gather.
func metricsHandler(gather prometheus.Gatherer) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(gather, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
}
