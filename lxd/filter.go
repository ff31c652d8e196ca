package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// filterClause is one "key eq value" (or ne) of a filter= expression.
type filterClause struct {
	key, op, value string
}

// parseFilter parses LXD's filter syntax: clauses "key eq|ne value" joined by " and ".
// An empty filter means no filtering.
func parseFilter(s string) ([]filterClause, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}

	var out []filterClause
	for _, part := range strings.Split(s, " and ") {
		f := strings.Fields(part)
		if len(f) < 3 || (f[1] != "eq" && f[1] != "ne") {
			return nil, api.StatusErrorf(http.StatusBadRequest, "invalid filter clause %q: want \"key eq value\"", part)
		}

		out = append(out, filterClause{key: f[0], op: f[1], value: strings.Trim(strings.Join(f[2:], " "), "\"'")})
	}

	return out, nil
}

// matchFilter applies clauses to an object by its JSON field names (dots descend into maps).
func matchFilter(obj any, clauses []filterClause) bool {
	if len(clauses) == 0 {
		return true
	}

	b, err := json.Marshal(obj)
	if err != nil {
		return false
	}

	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, c := range clauses {
		v := lookupField(m, c.key)
		ok := fieldMatches(v, c.value)
		if (c.op == "eq") != ok {
			return false
		}
	}

	return true
}

func lookupField(m map[string]any, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return fmt.Sprint(v)
		}
	}

	// config.limits.memory style keys: the first segment names a map.
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return ""
	}

	sub, _ := m[head].(map[string]any)
	if sub == nil {
		return ""
	}

	if v, ok := sub[rest]; ok {
		return fmt.Sprint(v)
	}

	return lookupField(sub, rest)
}

func compileAnchored(p string) (*regexp.Regexp, error) {
	return regexp.Compile("(?i)^(?:" + p + ")$")
}
