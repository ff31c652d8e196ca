package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/shared/api"
)

// fakeConsolePrompt is what an attached client sees first; %s is the
// instance name.
const fakeConsolePrompt = "\r\nDebian GNU/Linux 12 %s console\r\n\r\n%s login: "

// Console returns a running instance's console: a terminal in echo mode,
// one client at a time, as the monitor's.
func (f *fakeInstances) Console(name string) (consoleMonitor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	inst, ok := f.instances[name]
	if !ok {
		return nil, notFoundErr(name)
	}

	if inst.StatusCode == api.Stopped {
		return nil, api.StatusErrorf(http.StatusBadRequest, "Instance is not running")
	}

	c := f.consoles[name]
	if c == nil {
		c = &fakeConsole{name: name, log: []byte(f.cfg.ConsoleLog)}
		f.consoles[name] = c
	}

	return c, nil
}

// fakeConsole is one instance's console.
type fakeConsole struct {
	name string

	mu   sync.Mutex
	busy bool
	log  []byte
	term *os.File // the terminal's end while a client is attached
}

// ConsoleAttach prints the login prompt and echoes what it gets, until
// the handler closes its end.
func (c *fakeConsole) ConsoleAttach() (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.busy {
		return nil, container.ErrConsoleBusy
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}

	client := os.NewFile(uintptr(fds[0]), "fake-console-client")
	defer func() { _ = client.Close() }()

	conn, err := net.FileConn(client)
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, err
	}

	term := os.NewFile(uintptr(fds[1]), "fake-console")
	c.busy, c.term = true, term

	_, _ = fmt.Fprintf(term, fakeConsolePrompt, c.name, c.name)

	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := term.Read(buf)
			if n > 0 {
				_, _ = term.Write(buf[:n])
			}

			if err != nil {
				break
			}
		}

		c.mu.Lock()
		c.busy, c.term = false, nil
		c.mu.Unlock()
		_ = term.Close()
	}()

	return conn, nil
}

// ConsoleResize shows the new size on the console, for the tests to see.
func (c *fakeConsole) ConsoleResize(width, height int) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.term != nil {
		_, _ = fmt.Fprintf(c.term, "[size %dx%d]", width, height)
	}

	return nil
}

func (c *fakeConsole) ConsoleLog() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	return bytes.Clone(c.log), nil
}

func (c *fakeConsole) ClearConsoleLog() error {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.log = nil

	return nil
}
