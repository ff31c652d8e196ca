package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// renderTable draws rows the way `lxc` does (tablewriter with row lines):
// centred upper-case headers, left-aligned cells, a +---+ rule between
// every row, and multi-line cells spread over several text lines.
func renderTable(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}

	for _, row := range rows {
		for i, cell := range row {
			for _, line := range strings.Split(cell, "\n") {
				widths[i] = max(widths[i], utf8.RuneCountInString(line))
			}
		}
	}

	var b strings.Builder

	rule := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}

		b.WriteByte('\n')
	}

	rule()
	b.WriteByte('|')
	for i, h := range header {
		gap := widths[i] - utf8.RuneCountInString(h)
		left := gap / 2
		fmt.Fprintf(&b, " %s%s%s |", strings.Repeat(" ", left), h, strings.Repeat(" ", gap-left))
	}

	b.WriteByte('\n')
	rule()

	for _, row := range rows {
		lines := make([][]string, len(header))
		height := 1
		for i := range header {
			cell := ""
			if i < len(row) {
				cell = row[i]
			}

			lines[i] = strings.Split(cell, "\n")
			height = max(height, len(lines[i]))
		}

		for l := range height {
			b.WriteByte('|')
			for i := range header {
				text := ""
				if l < len(lines[i]) {
					text = lines[i][l]
				}

				pad := widths[i] - utf8.RuneCountInString(text)
				fmt.Fprintf(&b, " %s%s |", text, strings.Repeat(" ", pad))
			}

			b.WriteByte('\n')
		}

		rule()
	}

	_, err := io.WriteString(w, b.String())

	return err
}

// renderCompact prints aligned columns without borders (`--format compact`).
func renderCompact(w io.Writer, header []string, rows [][]string) error {
	flat := make([][]string, 0, len(rows)+1)
	flat = append(flat, header)
	for _, row := range rows {
		r := make([]string, len(row))
		for i, c := range row {
			r[i] = strings.ReplaceAll(c, "\n", ", ")
		}

		flat = append(flat, r)
	}

	widths := make([]int, len(header))
	for _, row := range flat {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}

	var b strings.Builder
	for _, row := range flat {
		var line strings.Builder
		for i, c := range row {
			line.WriteString(c)
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}

		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}

	_, err := io.WriteString(w, b.String())

	return err
}

// renderCSV prints rows without header; multi-line cells stay in one field.
func renderCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)

	err := cw.WriteAll(rows)
	if err != nil {
		return fmt.Errorf("writing csv: %w", err)
	}

	return nil
}
