package dfns

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// labelConnection is the metrics' label naming the connection.
const labelConnection = "connection"

// Metrics are the client's Prometheus metrics. Every HTTP attempt counts once. Both carry the
// label connection: the name of the connection whose client made the call.
type Metrics struct {
	// Requests is dfns_api_requests_total{connection,operation,code}; code is the HTTP status
	// or "error".
	Requests *prometheus.CounterVec
	// Duration is dfns_api_request_duration_seconds{connection,operation}.
	Duration *prometheus.HistogramVec
	// Paused is dfns_api_paused_seconds_total{connection}: the time during which the client
	// held every call because Dfns answered 429 with a Retry-After.
	Paused *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered). When reg
// already holds them (a second client in the same process), the registered ones are reused.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfns_api_requests_total",
			Help: "Requests sent to the Dfns API, by operation (official SDK method name) and HTTP status code (\"error\" when no answer came).",
		}, []string{labelConnection, "operation", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dfns_api_request_duration_seconds",
			Help:    "Duration of requests to the Dfns API, by operation.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{labelConnection, "operation"}),
		Paused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfns_api_paused_seconds_total",
			Help: "Seconds during which every call to Dfns was held because Dfns answered 429 with a Retry-After (counted once, however many calls waited).",
		}, []string{labelConnection}),
	}
	if reg == nil {
		return m
	}
	m.Requests = register(reg, m.Requests)
	m.Duration = register(reg, m.Duration)
	m.Paused = register(reg, m.Paused)
	return m
}

// register registers c, or returns the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	// A different collector of the same name: keep ours unregistered rather than fail.
	return c
}

// forget drops the series of one connection, whose client is gone.
func (m *Metrics) forget(connection string) {
	if m == nil {
		return
	}
	m.Requests.DeletePartialMatch(prometheus.Labels{labelConnection: connection})
	m.Duration.DeletePartialMatch(prometheus.Labels{labelConnection: connection})
	m.Paused.DeletePartialMatch(prometheus.Labels{labelConnection: connection})
}

// observe records one attempt of the connection's client; status 0 means no answer.
func (m *Metrics) observe(connection, op string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.Requests.WithLabelValues(connection, op, code).Inc()
	m.Duration.WithLabelValues(connection, op).Observe(d.Seconds())
}

// paused counts d more seconds of calls held for a Retry-After.
func (m *Metrics) paused(connection string, d time.Duration) {
	if m == nil {
		return
	}
	m.Paused.WithLabelValues(connection).Add(d.Seconds())
}
