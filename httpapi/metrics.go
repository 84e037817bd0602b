package httpapi

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics. Handles are resolved once (per route and per status code on
// first use), so that counting a request allocates nothing.
type metrics struct {
	requests *prometheus.CounterVec   // tokencache_http_requests_total{route,code}
	duration *prometheus.HistogramVec // tokencache_http_request_duration_seconds{route}
	authz    *prometheus.CounterVec   // tokencache_authz_decisions_total{result}

	decisions [numDecisions]prometheus.Counter
}

// decision is the outcome of one forward-auth request.
type decision uint8

const (
	decisionAllow       decision = iota // 200
	decisionDenyToken                   // 401: missing, malformed, unknown, expired, revoked, idle
	decisionDenyScope                   // 403: a required scope is missing
	decisionUndecidable                 // 401 + X-Token-Error: the node cannot decide
	numDecisions
)

var decisionNames = [numDecisions]string{"allow", "deny_token", "deny_scope", "deny_unavailable"}

// durationBuckets suit a sidecar answering from memory in microseconds and
// admin writes that wait for a commit in milliseconds.
var durationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokencache_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokencache_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request (handler time, without network I/O), by route pattern.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokencache_authz_decisions_total",
			Help: "Forward-auth decisions: allow, deny_token (401), deny_scope (403), deny_unavailable (401, node cannot decide).",
		}, []string{"result"}),
	}
	for d := range m.decisions {
		m.decisions[d] = m.authz.WithLabelValues(decisionNames[d])
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.authz} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, errors.New("cannot register HTTP metrics: already registered (use one registry per server)")
				}
				return nil, err
			}
		}
	}
	return m, nil
}

// knownCodes are the statuses the API answers; each gets a cached counter
// per route. Others (never expected) are counted through the vector.
var knownCodes = [...]int{200, 201, 400, 401, 403, 404, 405, 408, 409, 413, 415, 431, 500, 503}

func codeIndex(code int) int {
	for i, c := range knownCodes {
		if c == code {
			return i
		}
	}
	return -1
}

// routeMetrics holds the handles of one route.
type routeMetrics struct {
	label    string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	byCode   [len(knownCodes)]atomic.Pointer[counterHandle]
}

type counterHandle struct{ c prometheus.Counter }

func (m *metrics) route(label string) *routeMetrics {
	return &routeMetrics{
		label:    label,
		requests: m.requests,
		duration: m.duration.WithLabelValues(label),
	}
}

// observe counts one answered request and its duration.
func (r *routeMetrics) observe(code int, seconds float64) {
	r.duration.Observe(seconds)
	r.count(code)
}

// count counts one answered request.
func (r *routeMetrics) count(code int) {
	i := codeIndex(code)
	if i < 0 {
		r.requests.WithLabelValues(r.label, strconv.Itoa(code)).Inc()
		return
	}
	h := r.byCode[i].Load()
	if h == nil {
		// Created on first use so that /metrics shows only codes that
		// happened; two racing creators get the same child.
		h = &counterHandle{c: r.requests.WithLabelValues(r.label, strconv.Itoa(code))}
		r.byCode[i].Store(h)
	}
	h.c.Inc()
}
