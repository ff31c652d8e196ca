package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestRenderFormat(t *testing.T) {
	var s Set
	a := s.Family("t_a_total", Counter, "A counter.")
	b := s.Family("t_b_bytes", Gauge, "A gauge\\with a backslash\nand a new line.")

	// Samples added in turns end up under their own family, in order.
	a.Add(1, L("name", "x"))
	b.Add(2.5, L("name", "x"))
	a.Add(3e15, L("name", `q"uo\te`+"\nnl"))
	b.Add(math.Inf(1))
	s.Family("t_empty", Gauge, "Never used: not written.")

	got := string(Render(&s))
	want := `# HELP t_a_total A counter.
# TYPE t_a_total counter
t_a_total{name="x"} 1
t_a_total{name="q\"uo\\te\nnl"} 3e+15
# HELP t_b_bytes A gauge\\with a backslash\nand a new line.
# TYPE t_b_bytes gauge
t_b_bytes{name="x"} 2.5
t_b_bytes +Inf
# EOF
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderInvalidUTF8(t *testing.T) {
	var s Set
	s.Family("t", Gauge, "h").Add(1, L("device", "a\xffb"))

	got := string(Render(&s))
	if !strings.Contains(got, `t{device="a`+"\uFFFD"+`b"} 1`) {
		t.Errorf("invalid UTF-8 not replaced:\n%s", got)
	}
}

func TestHistogram(t *testing.T) {
	var s Set
	s.Family("t_seconds", Histogram, "h").AddHistogram([]float64{0.1, 1}, []uint64{2, 5}, 7, 12.5, L("method", "GET"))

	got := string(Render(&s))
	want := `# HELP t_seconds h
# TYPE t_seconds histogram
t_seconds_bucket{method="GET",le="0.1"} 2
t_seconds_bucket{method="GET",le="1"} 5
t_seconds_bucket{method="GET",le="+Inf"} 7
t_seconds_count{method="GET"} 7
t_seconds_sum{method="GET"} 12.5
# EOF
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 42: "42", -3: "-3", 0.25: "0.25", 1 << 40: "1099511627776", 1e20: "1e+20", math.NaN(): "NaN", math.Inf(-1): "-Inf",
	} {
		got := formatFloat(v)
		if got != want {
			t.Errorf("formatFloat(%v) = %q, want %q", v, got, want)
		}
	}
}
