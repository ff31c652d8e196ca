package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/session"
)

// stdio is the pipes of a non-interactive exec: the daemon's ends and the
// command's.
type stdio struct {
	files   []*os.File // every end, for closeAll
	child   []*os.File // the command's ends
	stdinW  *os.File
	stdoutR *os.File
	stderrR *os.File
}

// openStdio sets a's stdio: pipes with websockets, /dev/null or the
// record-output files without.
func (x *execSession) openStdio(a *session.ExecArgs) (*stdio, error) {
	st := &stdio{}
	if a.PTY {
		return st, nil
	}

	if x.ws == nil {
		return st, x.openDetached(a, st)
	}

	for i := 0; i < 3; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			st.closeAll()
			return nil, fmt.Errorf("creating pipe: %w", err)
		}

		st.files = append(st.files, r, w)

		switch i {
		case 0:
			a.Stdin, st.stdinW = r, w
			st.child = append(st.child, r)
		case 1:
			a.Stdout, st.stdoutR = w, r
			st.child = append(st.child, w)
		case 2:
			a.Stderr, st.stderrR = w, r
			st.child = append(st.child, w)
		}
	}

	return st, nil
}

// openDetached gives a command run without websockets /dev/null as stdin
// and its record-output files (or /dev/null) as stdout and stderr.
func (x *execSession) openDetached(a *session.ExecArgs, st *stdio) error {
	open := func(path string, flag int) (*os.File, error) {
		f, err := os.OpenFile(path, flag, 0o600)
		if err != nil {
			return nil, err
		}

		st.files = append(st.files, f)
		st.child = append(st.child, f)

		return f, nil
	}

	var err error

	a.Stdin, err = open(os.DevNull, os.O_RDONLY)
	if err != nil {
		return err
	}

	for fd, dst := range map[string]**os.File{"1": &a.Stdout, "2": &a.Stderr} {
		path := os.DevNull
		flag := os.O_WRONLY

		if x.outputs != nil {
			path, flag = x.outputs[fd], os.O_WRONLY|os.O_CREATE|os.O_TRUNC

			err = os.MkdirAll(filepath.Dir(path), 0o700)
			if err != nil {
				return err
			}
		}

		*dst, err = open(path, flag)
		if err != nil {
			return err
		}
	}

	return nil
}

// closeChildEnds drops the daemon's copies of the command's ends, so EOF
// arrives when the command closes them.
func (s *stdio) closeChildEnds() {
	for _, f := range s.child {
		_ = f.Close()
	}
}

func (s *stdio) closeAll() {
	for _, f := range s.files {
		_ = f.Close()
	}
}
