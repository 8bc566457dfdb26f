// Package metrics registers the `prometheus` metrics exporter: with
// `metrics: {prometheus: {}}` in a pipeline, every Benthos and o365connect
// series is served in the Prometheus text format on /metrics of Benthos'
// HTTP server.
package metrics

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	pmFieldProcessMetrics = "add_process_metrics"
	pmFieldGoMetrics      = "add_go_metrics"
)

func prometheusSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Summary("Serves metrics in the Prometheus text format on `/metrics` of the HTTP server (`http.address`).").
		Description(`
Counters and gauges keep their names, characters outside `+"`[a-zA-Z0-9_:]`"+` replaced by `+"`_`"+`.
Timings (Benthos reports them in nanoseconds) are histograms of nanoseconds. A name registered
twice with different label names keeps its first label names; the second registration is
logged and its values dropped.`).
		Fields(
			service.NewBoolField(pmFieldProcessMetrics).
				Description("Also export the process's CPU, memory and file descriptor metrics (`process_*`).").
				Default(true),
			service.NewBoolField(pmFieldGoMetrics).
				Description("Also export the Go runtime's metrics (`go_*`).").
				Default(true),
		).
		Example("Prometheus on the HTTP server", "Scrape `http://HOST:4195/metrics`.", `
http:
  address: 0.0.0.0:4195
metrics:
  prometheus: {}
`)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", prometheusSpec(),
		func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
			process, err := conf.FieldBool(pmFieldProcessMetrics)
			if err != nil {
				return nil, err
			}
			goRuntime, err := conf.FieldBool(pmFieldGoMetrics)
			if err != nil {
				return nil, err
			}
			return NewExporter(process, goRuntime, log), nil
		})
}

// timingBuckets span 10µs to 100s in nanoseconds, the unit Benthos times in.
var timingBuckets = prometheus.ExponentialBuckets(1e4, 10, 8)

// Exporter is a Benthos metrics exporter backed by its own Prometheus registry.
type Exporter struct {
	registry *prometheus.Registry
	log      *service.Logger

	mu   sync.Mutex
	vecs map[string]registeredVec
}

// registeredVec remembers a registered vector and its label names, so that a
// second request for the same name reuses it.
type registeredVec struct {
	labels []string
	vec    prometheus.Collector
}

// NewExporter returns an exporter with an empty registry, plus the process
// and Go runtime collectors when asked. log may be nil.
func NewExporter(process, goRuntime bool, log *service.Logger) *Exporter {
	e := &Exporter{registry: prometheus.NewRegistry(), log: log, vecs: map[string]registeredVec{}}
	if process {
		e.registry.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if goRuntime {
		e.registry.MustRegister(collectors.NewGoCollector())
	}
	return e
}

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

func sanitizeName(name string) string {
	name = invalidNameChars.ReplaceAllString(name, "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "_" + name
	}
	return name
}

// vec returns the vector registered under name, creating it with build
// when new; nil when the name is taken with other label names.
func (e *Exporter) vec(name string, labels []string, build func(name string) prometheus.Collector) prometheus.Collector {
	name = sanitizeName(name)
	clean := make([]string, len(labels))
	for i, l := range labels {
		clean[i] = sanitizeName(l)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if got, ok := e.vecs[name]; ok {
		if slices.Equal(got.labels, clean) {
			return got.vec
		}
		e.log.Warnf("Metric %s is registered with labels %v, dropping a second registration with labels %v", name, got.labels, clean)
		return nil
	}
	v := build(name)
	if err := e.registry.Register(v); err != nil {
		e.log.Warnf("Dropping metric %s: %v", name, err)
		return nil
	}
	e.vecs[name] = registeredVec{labels: clean, vec: v}
	return v
}

// NewCounterCtor implements service.MetricsExporter.
func (e *Exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	v, _ := e.vec(name, labelKeys, func(n string) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Benthos counter " + n + "."}, sanitizeLabels(labelKeys))
	}).(*prometheus.CounterVec)
	return func(labelValues ...string) service.MetricsExporterCounter {
		if v == nil {
			return noopMetric{}
		}
		return counter{v.WithLabelValues(labelValues...)}
	}
}

// NewTimerCtor implements service.MetricsExporter.
func (e *Exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	v, _ := e.vec(name, labelKeys, func(n string) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: "Benthos timing " + n + ", in nanoseconds.", Buckets: timingBuckets}, sanitizeLabels(labelKeys))
	}).(*prometheus.HistogramVec)
	return func(labelValues ...string) service.MetricsExporterTimer {
		if v == nil {
			return noopMetric{}
		}
		return timer{v.WithLabelValues(labelValues...)}
	}
}

// NewGaugeCtor implements service.MetricsExporter.
func (e *Exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	v, _ := e.vec(name, labelKeys, func(n string) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: "Benthos gauge " + n + "."}, sanitizeLabels(labelKeys))
	}).(*prometheus.GaugeVec)
	return func(labelValues ...string) service.MetricsExporterGauge {
		if v == nil {
			return noopMetric{}
		}
		return gauge{v.WithLabelValues(labelValues...)}
	}
}

// HandlerFunc serves the registry; Benthos mounts it on /metrics and /stats.
func (e *Exporter) HandlerFunc() http.HandlerFunc {
	return promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{}).ServeHTTP
}

// Close implements service.MetricsExporter.
func (e *Exporter) Close(context.Context) error { return nil }

func sanitizeLabels(labels []string) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = sanitizeName(l)
	}
	return out
}

type counter struct{ c prometheus.Counter }

func (c counter) Incr(n int64)          { c.c.Add(float64(n)) }
func (c counter) IncrFloat64(n float64) { c.c.Add(n) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Set(v int64)          { g.g.Set(float64(v)) }
func (g gauge) SetFloat64(v float64) { g.g.Set(v) }

type timer struct{ h prometheus.Observer }

func (t timer) Timing(ns int64) { t.h.Observe(float64(ns)) }

// noopMetric stands in for a series whose name could not be registered.
type noopMetric struct{}

func (noopMetric) Incr(int64)   {}
func (noopMetric) Set(int64)    {}
func (noopMetric) Timing(int64) {}
