package container

import (
	"bytes"
	"embed"
	"io/fs"
	"os"
	"sync"

	"github.com/berth-dev/berth/lxd/sys"
)

// initBin holds berth-init when the build put it there (make build; initbin/README.md).
//
//go:embed initbin
var initBin embed.FS

const initBinPath = "initbin/berth-init"

// initExe is how a monitor execs a container's init.
type initExe struct {
	path string   // what to exec
	args []string // its argv
	file *os.File // the sealed copy path names; nil for the daemon's own binary
}

func (e *initExe) close() {
	if e.file != nil {
		_ = e.file.Close()
	}
}

// spareInit is the sealed copy a spare monitor makes while it waits, so that the start
// it is given does not copy 2 MB first.
var spareInit struct {
	sync.Mutex
	exe *initExe
}

// prepareInitExe makes a sealed copy of berth-init ahead of a start (spare.go).
func prepareInitExe() {
	e := newInitExe()
	spareInit.Lock()
	defer spareInit.Unlock()

	if spareInit.exe != nil {
		spareInit.exe.close()
	}

	spareInit.exe = e
}

// takeInitExe returns the copy prepared ahead, else makes one. The caller closes it
// once init has exec'd (or failed to).
func takeInitExe() *initExe {
	spareInit.Lock()
	e := spareInit.exe
	spareInit.exe = nil
	spareInit.Unlock()

	if e != nil {
		return e
	}

	return newInitExe()
}

// newInitExe seals the embedded berth-init into a memfd (nothing a container does can
// change what a later start runs, as with the daemon's own sealed copy); without it, or
// if the copy fails, init runs as the daemon's own `__init` (the sealed copy we run
// from).
func newInitExe() *initExe {
	self := &initExe{path: "/proc/self/exe", args: []string{"berth-init", helperInit}}

	b, err := fs.ReadFile(initBin, initBinPath)
	if err != nil {
		return self
	}

	path, f, err := sys.SealedCopy("berth-init", bytes.NewReader(b))
	if err != nil {
		return self
	}

	return &initExe{path: path, args: []string{"berth-init"}, file: f}
}
