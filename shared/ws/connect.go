package ws

import (
	"cmp"
	"context"
	"fmt"
)

// DialFunc connects the stream whose secret is given.
type DialFunc func(ctx context.Context, secret string) (*Conn, error)

// ConnectStreams is the client's side of connecting a session: the streams
// of names (a Layout's Streams), FDControl first, as lxc does (the server
// may start the command as soon as the data streams are there, and a control
// socket connected later would miss it), then the data streams all at once.
// On error it closes the connections it made.
func ConnectStreams(ctx context.Context, secrets map[string]string, names []string, dial DialFunc) (map[string]*Conn, error) {
	conns := map[string]*Conn{}

	connect := func(name string) (*Conn, error) {
		secret, ok := secrets[name]
		if !ok {
			return nil, fmt.Errorf("the operation offers no %q websocket", name)
		}

		conn, err := dial(ctx, secret)
		if err != nil {
			return nil, fmt.Errorf("connecting the %q websocket: %w", name, err)
		}

		return conn, nil
	}

	fail := func(err error) (map[string]*Conn, error) {
		for _, c := range conns {
			_ = c.Close()
		}

		return nil, err
	}

	var data []string

	for _, name := range names {
		if name != FDControl {
			data = append(data, name)
			continue
		}

		conn, err := connect(name)
		if err != nil {
			return fail(err)
		}

		conns[name] = conn
	}

	type dialed struct {
		name string
		conn *Conn
		err  error
	}

	results := make(chan dialed, len(data))

	for _, name := range data {
		go func() {
			conn, err := connect(name)
			results <- dialed{name: name, conn: conn, err: err}
		}()
	}

	var firstErr error

	for range data {
		r := <-results
		if r.err != nil {
			firstErr = cmp.Or(firstErr, r.err)
			continue
		}

		conns[r.name] = r.conn
	}

	if firstErr != nil {
		return fail(firstErr)
	}

	return conns, nil
}
