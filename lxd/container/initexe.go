package container

import (
	"debug/buildinfo"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
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

// spareInit is what a spare monitor makes while it waits, so that the start it is given
// does neither: the sealed copy of berth-init (not copying 3 MB first) and an init made
// by a maker running it (initclone.go).
var spareInit struct {
	sync.Mutex
	exe   *initExe
	maker chan *initMaker // the init on its way; nil if there is none
}

// prepareInit makes both ahead of a start (spare.go): init in the background, so that the
// spare answers its daemon at once however long the maker takes. An init that could not
// be made is left to the start, which makes one again and says why.
func prepareInit() {
	e := newInitExe()
	c := make(chan *initMaker, 1)

	go func() {
		mk, err := spawnInitMaker(e)
		if err != nil {
			fmt.Fprintln(os.Stderr, "spare monitor: making init ahead:", err)
		}

		c <- mk
	}()

	spareInit.Lock()
	spareInit.exe, spareInit.maker = e, c
	spareInit.Unlock()
}

// takeInit returns the copy prepared ahead, else makes one, and the init made ahead (once
// it is ready) or nil. The caller closes the copy once init and the copier have run
// it (or failed to).
func takeInit() (*initExe, *initMaker) {
	spareInit.Lock()
	e, c := spareInit.exe, spareInit.maker
	spareInit.exe, spareInit.maker = nil, nil
	spareInit.Unlock()

	if e == nil {
		e = newInitExe()
	}

	var mk *initMaker
	if c != nil {
		mk = <-c
	}

	return e, mk
}

// embeddedIsOurs says (once per process) whether the embedded berth-init was built from
// this binary's source (CheckInitExe): one of another build may not speak this start's
// protocol (it would ignore the init maker's mode, initclone.c), and the daemon's own
// binary always does.
var embeddedIsOurs = sync.OnceValue(func() bool { return CheckInitExe() == nil })

// initFromEmbedded says whether monitors run the embedded berth-init; this package's
// tests clear it, so that they always run the init code they were built with.
var initFromEmbedded = true

// CheckInitExe says (for berthd's log at start) whether init will run from an embedded
// berth-init built from the same source revision as this binary. A plain `go build
// ./lxd` embeds none, or whatever an earlier build left in initbin/.
func CheckInitExe() error {
	f, err := initBin.Open(initBinPath)
	if err != nil {
		return errors.New("no berth-init is built into this berthd (make build embeds it): containers' init runs from berthd, ~3 ms slower per start")
	}

	defer func() { _ = f.Close() }()

	ours, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}

	// Every monitor runs this once, before it makes init: read only the ELF headers and
	// the build information through ReadAt. fs.ReadFile copied all 3 MB, which with the
	// garbage collection it set off cost each monitor ~20 ms of CPU on the development VM.
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return errors.New("the embedded berth-init cannot be read in place")
	}

	theirs, err := buildinfo.Read(ra)
	if err != nil {
		return fmt.Errorf("reading the embedded berth-init's build information: %w", err)
	}

	if a, b := vcsOf(ours), vcsOf(theirs); a != b {
		return fmt.Errorf("the embedded berth-init was built from %s, berthd from %s: run make build", b, a)
	}

	return nil
}

// vcsOf is the revision a binary was built from, and whether its tree was modified.
func vcsOf(bi *debug.BuildInfo) string {
	rev, modified := "an unknown revision", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			modified = " (modified)"
		}
	}

	return rev + modified
}

// newInitExe seals the embedded berth-init into a memfd (nothing a container does can
// change what a later start runs, as with the daemon's own sealed copy); without it, or
// if the copy fails, init runs as the daemon's own `__init` (the sealed copy we run
// from).
func newInitExe() *initExe {
	self := &initExe{path: "/proc/self/exe"}
	if !initFromEmbedded || !embeddedIsOurs() {
		return self
	}

	// Read straight from the binary's data into the memfd: no 3 MB copy in between.
	src, err := initBin.Open(initBinPath)
	if err != nil {
		return self
	}

	defer func() { _ = src.Close() }()

	path, f, err := sys.SealedCopy("berth-init", src)
	if err != nil {
		return self
	}

	return &initExe{path: path, file: f}
}
