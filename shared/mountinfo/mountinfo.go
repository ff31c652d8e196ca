// Package mountinfo holds helpers for reading /proc/<pid>/mountinfo.
package mountinfo

import "strings"

// Unescape undoes mountinfo's octal escapes of path fields (\040 for a space, \011 for a
// tab, \012 for a newline, \134 for a backslash). A malformed escape is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}

	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}

		b.WriteByte(s[i])
	}

	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
