package firewall

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

// inNetns runs f on a thread in a network namespace of its own: the tables it writes are
// gone with it, and nothing of the host's traffic meets them.
func inNetns(b *testing.B, f func()) {
	testutil.RequireRoot(b, "use nftables in a network namespace")
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := unix.Unshare(unix.CLONE_NEWNET)
		if err == nil {
			f()
		}

		done <- err
	}()

	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// threadCPU is the CPU time of the calling (locked) thread, the kernel's work for its
// netlink messages included: unlike wall time, other work on the machine does not add to
// it.
func threadCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchPort(i int) Port {
	mac := net.HardwareAddr{0x00, 0x16, 0x3e, 0, byte(i >> 8), byte(i)}
	return Port{MAC: mac, IP: net.IPv4(10, 252, byte(i>>8), byte(i)), ACL: "web"}
}

// fillPorts filters n ports on the bench's bridge.
func fillPorts(b *testing.B, n int) bool {
	for i := range n {
		if _, err := PortAdd("bbench", fmt.Sprintf("vb%d", i), benchPort(i)); err != nil {
			b.Error(err)
			return false
		}
	}

	return true
}

// BenchmarkPorts: adding one more port to a bridge that filters n ports (and deleting it,
// untimed), and listing the base chain every frame goes through.
func BenchmarkPorts(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("add/ports=%d", n), func(b *testing.B) {
			inNetns(b, func() {
				if !fillPorts(b, n) {
					return
				}

				var cpu time.Duration
				b.ResetTimer()
				for range b.N {
					c0 := threadCPU()
					_, err := PortAdd("bbench", "vbnew", benchPort(n))
					cpu += threadCPU() - c0
					b.StopTimer()
					if err == nil {
						err = PortDel("bbench", "vbnew")
					}

					if err != nil {
						b.Error(err)
						return
					}

					b.StartTimer()
				}

				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
			})
		})

		// A restarting berthd adds every running container's port again, unchanged.
		b.Run(fmt.Sprintf("refresh/ports=%d", n), func(b *testing.B) {
			inNetns(b, func() {
				if !fillPorts(b, n) {
					return
				}

				var cpu time.Duration
				b.ResetTimer()
				for i := range b.N {
					c0 := threadCPU()
					wrote, err := PortAdd("bbench", fmt.Sprintf("vb%d", i%n), benchPort(i%n))
					cpu += threadCPU() - c0
					if err != nil || wrote {
						b.Errorf("refreshing an unchanged port: wrote %v, %v", wrote, err)
						return
					}
				}

				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
			})
		})

		b.Run(fmt.Sprintf("list/ports=%d", n), func(b *testing.B) {
			inNetns(b, func() {
				if !fillPorts(b, n) {
					return
				}

				c, err := nftables.New()
				if err != nil {
					b.Error(err)
					return
				}

				t := bridgeTable("bbench")
				b.ResetTimer()
				c0 := threadCPU()
				for range b.N {
					_, err := c.GetRules(t, baseChain(t))
					if err != nil {
						b.Error(err)
						return
					}
				}

				b.ReportMetric(float64((threadCPU()-c0).Microseconds())/float64(b.N), "cpu-us/op")
			})
		})
	}
}
