package imagebuild

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultMirror is used when the host's apt sources name no mirror for the suite.
const DefaultMirror = "http://deb.debian.org/debian"

// Mirror returns the Debian mirror the host's apt uses for suite (e.g. bookworm), read from
// /etc/apt/sources.list and sources.list.d/*.list|*.sources, else DefaultMirror.
func Mirror(suite string) string {
	return mirrorFrom("/etc/apt", suite)
}

func mirrorFrom(aptDir, suite string) string {
	files := []string{filepath.Join(aptDir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	files = append(files, more...)

	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}

		var uri string

		switch {
		case strings.HasSuffix(f, ".sources"):
			uri = mirrorDeb822(string(data), suite)
		case strings.HasSuffix(f, ".list"):
			uri = mirrorOneLine(string(data), suite)
		}

		if uri != "" {
			return strings.TrimSuffix(uri, "/")
		}
	}

	return DefaultMirror
}

// mirrorOneLine reads "deb [options] URI SUITE COMPONENTS..." lines.
func mirrorOneLine(data, suite string) string {
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}

		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}

			if len(fields) > 0 {
				fields = fields[1:]
			}
		}

		if len(fields) >= 2 && fields[1] == suite && usableURI(fields[0]) {
			return fields[0]
		}
	}

	return ""
}

// mirrorDeb822 reads deb822 stanzas (Types:, URIs:, Suites:, Enabled:).
func mirrorDeb822(data, suite string) string {
	for _, stanza := range strings.Split(data, "\n\n") {
		fields := map[string][]string{}

		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}

			key, val, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}

			fields[strings.ToLower(strings.TrimSpace(key))] = strings.Fields(val)
		}

		if slices.Contains(fields["enabled"], "no") || !slices.Contains(fields["types"], "deb") || !slices.Contains(fields["suites"], suite) {
			continue
		}

		for _, uri := range fields["uris"] {
			if usableURI(uri) {
				return uri
			}
		}
	}

	return ""
}

// usableURI keeps the http(s) mirrors debootstrap can fetch from.
func usableURI(uri string) bool {
	return strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://")
}
