package api

// Console types accepted by POST /1.0/instances/{name}/console.
const (
	ConsoleTypeConsole = "console"
)

// InstanceConsolePost is the body of POST /1.0/instances/{name}/console.
type InstanceConsolePost struct {
	Width  int    `json:"width" yaml:"width"`
	Height int    `json:"height" yaml:"height"`
	Type   string `json:"type" yaml:"type"`
}
