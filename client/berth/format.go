package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"gopkg.in/yaml.v3"
)

// Output formats of the list commands, as in lxc 5.0.
const (
	formatTable   = "table"
	formatCompact = "compact"
	formatCSV     = "csv"
	formatJSON    = "json"
	formatYAML    = "yaml"
)

var formats = []string{formatCSV, formatJSON, formatTable, formatYAML, formatCompact}

const formatHelp = "Format (csv|json|table|yaml|compact)"

func checkFormat(f string) error {
	if !slices.Contains(formats, f) {
		return fmt.Errorf("invalid format %q (want one of csv, json, table, yaml, compact)", f)
	}

	return nil
}

// renderList prints a list in the chosen format: table-like formats use
// header and rows, json/yaml the full objects.
func renderList(w io.Writer, format string, header []string, rows [][]string, objects any) error {
	switch format {
	case formatTable:
		return renderTable(w, header, rows)
	case formatCompact:
		return renderCompact(w, header, rows)
	case formatCSV:
		return renderCSV(w, rows)
	case formatJSON:
		return writeJSON(w, objects)
	case formatYAML:
		return writeYAML(w, objects)
	}

	return checkFormat(format)
}

func writeJSON(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding json: %w", err)
	}

	_, err = fmt.Fprintf(w, "%s\n", data)

	return err
}

func writeYAML(w io.Writer, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding yaml: %w", err)
	}

	_, err = w.Write(data)

	return err
}
