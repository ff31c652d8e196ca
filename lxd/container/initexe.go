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

// initExe is what a monitor execs for a container's init and its mount namespace
// copier (namespaces.go): berth-init, or the daemon's own binary in helper mode.
type initExe struct {
	path string   // what to exec
	file *os.File // the sealed copy path names; nil for the daemon's own binary
}

// initArgs is init's argv.
func (e *initExe) initArgs() []string {
	if e.file == nil {
		return []string{"berth-init", helperInit}
	}

	return []string{"berth-init"}
}

// copierArgs is the copier's argv (its C constructor takes over before main).
func (e *initExe) copierArgs() []string {
	if e.file == nil {
		return []string{"berth-mount-copier", helperMountCopier}
	}

	return []string{"berth-mount-copier"}
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
// once init and the copier have exec'd (or failed to).
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
	self := &initExe{path: "/proc/self/exe"}

	b, err := fs.ReadFile(initBin, initBinPath)
	if err != nil {
		return self
	}

	path, f, err := sys.SealedCopy("berth-init", bytes.NewReader(b))
	if err != nil {
		return self
	}

	return &initExe{path: path, file: f}
}
