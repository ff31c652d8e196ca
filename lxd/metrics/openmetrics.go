package metrics

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ContentType is what GET /1.0/metrics answers with, as LXD does.
const ContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// eof ends an OpenMetrics exposition; a scraper that does not see it discards the scrape.
const eof = "# EOF\n"

// Type is a metric family's type.
type Type string

// The types Berth exposes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Label is one name="value" pair of a sample.
type Label struct{ Name, Value string }

// L makes a Label.
func L(name, value string) Label { return Label{Name: name, Value: value} }

// Family is a metric family: its samples are written together under one HELP and TYPE.
//
// A counter's TYPE line names it with its "_total" suffix, as LXD writes it: Prometheus
// reads that in both the OpenMetrics and the older text format (promtool checks the
// latter), and dashboards built for LXD query exactly those series names.
type Family struct {
	Name string
	Type Type
	Help string

	samples []sample
}

type sample struct {
	suffix string // "_bucket", "_count", "_sum" of a histogram, else ""
	labels []Label
	value  float64
}

// Add appends a sample.
func (f *Family) Add(value float64, labels ...Label) {
	f.samples = append(f.samples, sample{labels: labels, value: value})
}

// AddHistogram appends one histogram series: cumulative counts per upper bound (bounds
// ascending, counts as long as bounds), the total count and the sum. The +Inf bucket is
// the total count.
func (f *Family) AddHistogram(bounds []float64, cumulative []uint64, count uint64, sum float64, labels ...Label) {
	for i, b := range bounds {
		f.samples = append(f.samples, sample{suffix: "_bucket", labels: withLabel(labels, "le", formatFloat(b)), value: float64(cumulative[i])})
	}

	f.samples = append(f.samples,
		sample{suffix: "_bucket", labels: withLabel(labels, "le", "+Inf"), value: float64(count)},
		sample{suffix: "_count", labels: labels, value: float64(count)},
		sample{suffix: "_sum", labels: labels, value: sum},
	)
}

func withLabel(labels []Label, name, value string) []Label {
	out := make([]Label, 0, len(labels)+1)
	out = append(out, labels...)
	return append(out, Label{Name: name, Value: value})
}

// Set is an ordered list of families: each is written once, with every sample added to
// it, in the order families were first asked for.
type Set struct {
	families []*Family
	byName   map[string]*Family
}

// Family returns the family of that name, created on first use.
func (s *Set) Family(name string, t Type, help string) *Family {
	if s.byName == nil {
		s.byName = map[string]*Family{}
	}

	f, ok := s.byName[name]
	if !ok {
		f = &Family{Name: name, Type: t, Help: help}
		s.byName[name] = f
		s.families = append(s.families, f)
	}

	return f
}

// Families returns the families in order.
func (s *Set) Families() []*Family { return s.families }

// WriteTo appends the families with samples to buf, without the closing "# EOF": a
// response is several sets (the cached instance metrics, the daemon's own) and one EOF.
func (s *Set) WriteTo(buf *bytes.Buffer) {
	for _, f := range s.families {
		if len(f.samples) == 0 {
			continue
		}

		buf.WriteString("# HELP ")
		buf.WriteString(f.Name)
		buf.WriteByte(' ')
		buf.WriteString(escapeHelp(f.Help))
		buf.WriteString("\n# TYPE ")
		buf.WriteString(f.Name)
		buf.WriteByte(' ')
		buf.WriteString(string(f.Type))
		buf.WriteByte('\n')

		for _, s := range f.samples {
			buf.WriteString(f.Name)
			buf.WriteString(s.suffix)
			if len(s.labels) > 0 {
				buf.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						buf.WriteByte(',')
					}

					buf.WriteString(l.Name)
					buf.WriteString(`="`)
					buf.WriteString(escapeLabel(l.Value))
					buf.WriteByte('"')
				}

				buf.WriteByte('}')
			}

			buf.WriteByte(' ')
			buf.WriteString(formatFloat(s.value))
			buf.WriteByte('\n')
		}
	}
}

// Render writes sets and the closing "# EOF".
func Render(sets ...*Set) []byte {
	var buf bytes.Buffer
	for _, s := range sets {
		s.WriteTo(&buf)
	}

	buf.WriteString(eof)
	return buf.Bytes()
}

// escapeLabel escapes a label value as OpenMetrics (and the text format) require:
// backslash, double quote and line feed. Values must be UTF-8: anything else is replaced.
func escapeLabel(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}

	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}

	return labelEscaper.Replace(s)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// escapeHelp escapes what both formats agree on in HELP text (the text format does not
// unescape quotes there).
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// formatFloat writes integers in full (byte counts read better) and other values in the
// shortest form that reads back exactly.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}

	return strconv.FormatFloat(v, 'g', -1, 64)
}
