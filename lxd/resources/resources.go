// Package resources describes the host's hardware for GET /1.0/resources, in LXD's shapes,
// from what /proc and /sys say: processors (sockets, cores, threads, caches, frequencies,
// NUMA nodes), memory, block devices, network cards, PCI devices and DMI. What they do
// not say stays zero or empty: nothing is guessed. Every directory walk and file read is
// capped, so a host with many devices answers in bounded time and memory.
package resources

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Caps on what is read.
const (
	maxEntries  = 4096    // per directory listed
	maxFileSize = 1 << 20 // per file (cpuinfo of a large host is well below)
)

// Host reads /proc and /sys below root ("/" on a real host; a fake tree in tests).
type Host struct {
	Root string
	Arch string // LXD's architecture name
}

// Get describes the host.
func (h Host) Get() (*api.Resources, error) {
	cpu, err := h.cpu()
	if err != nil {
		return nil, err
	}

	mem, err := h.memory()
	if err != nil {
		return nil, err
	}

	out := &api.Resources{
		CPU:     *cpu,
		Memory:  *mem,
		GPU:     api.ResourcesGPU{Cards: []struct{}{}},
		Network: h.network(),
		Storage: h.storage(),
		USB:     api.ResourcesUSB{Devices: []struct{}{}},
		PCI:     h.pci(),
		System:  h.system(),
	}

	return out, nil
}

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// readString reads a small sysfs or procfs file, trimmed; "" when missing or too big.
func readString(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}

	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	return strings.TrimSpace(string(buf[:n]))
}

// readFile reads a file up to maxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}

	defer f.Close()
	buf := make([]byte, maxFileSize)
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}

	return buf[:n], nil
}

func readUint(path string) (uint64, bool) {
	v, err := strconv.ParseUint(readString(path), 10, 64)
	return v, err == nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// list returns the names in a directory, at most maxEntries; none when it is missing.
func list(dir string) []string {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}

	defer f.Close()
	names, err := f.Readdirnames(maxEntries)
	if err != nil && !errors.Is(err, os.ErrNotExist) && len(names) == 0 {
		return nil
	}

	return names
}

// linkBase is the last element of a symlink's target ("" when it is not a link).
func linkBase(path string) string {
	t, err := os.Readlink(path)
	if err != nil {
		return ""
	}

	return filepath.Base(t)
}

// numaNode is the NUMA node of a device (0 when the kernel says -1 or nothing).
func numaNode(devDir string) uint64 {
	v, _ := readUint(filepath.Join(devDir, "numa_node"))
	return v
}
