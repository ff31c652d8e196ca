package mountinfo

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const sample = `22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
36 25 0:31 / /sys/fs/cgroup/cpu rw,nosuid shared:8 master:2 - cgroup cgroup rw,cpu
40 28 0:35 /sub /srv/with\040space\011tab ro - ext4 /dev/vda\0401 rw,errors=remount-ro
41 28 0:36 / /srv/v` + "\v" + `tab rw - tmpfs  rw

`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}

	want := []Mount{
		{ID: 22, ParentID: 28, Major: 0, Minor: 20, Root: "/", MountPoint: "/sys", Options: "rw,nosuid,nodev,noexec,relatime", Optional: []string{"shared:7"}, FSType: "sysfs", Source: "sysfs", SuperOptions: "rw"},
		{ID: 36, ParentID: 25, Major: 0, Minor: 31, Root: "/", MountPoint: "/sys/fs/cgroup/cpu", Options: "rw,nosuid", Optional: []string{"shared:8", "master:2"}, FSType: "cgroup", Source: "cgroup", SuperOptions: "rw,cpu"},
		{ID: 40, ParentID: 28, Major: 0, Minor: 35, Root: "/sub", MountPoint: "/srv/with space\ttab", Options: "ro", FSType: "ext4", Source: "/dev/vda 1", SuperOptions: "rw,errors=remount-ro"},
		{ID: 41, ParentID: 28, Major: 0, Minor: 36, Root: "/", MountPoint: "/srv/v\vtab", Options: "rw", FSType: "tmpfs", Source: "", SuperOptions: "rw"},
	}

	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
	}

	if u := Under(got, "/sys/"); !reflect.DeepEqual(u, []string{"/sys", "/sys/fs/cgroup/cpu"}) {
		t.Errorf("Under(/sys/) = %q", u)
	}

	if u := Under(got, "/sy"); u != nil {
		t.Errorf("Under(/sy) = %q, want none", u)
	}

	if u := Under(got, "/"); len(u) != 4 {
		t.Errorf("Under(/) = %q, want all four", u)
	}
}

func TestParseMalformed(t *testing.T) {
	for _, line := range []string{
		"22 28 0:20 / /sys rw shared:7 sysfs sysfs rw",       // no separator
		"22 28 0:20 / /sys rw - sysfs sysfs",                 // too few after it
		"22 28 0:20 / /sys rw - sysfs sysfs rw extra",        // too many
		"x 28 0:20 / /sys rw - sysfs sysfs rw",               // id
		"22 28 020 / /sys rw - sysfs sysfs rw",               // device
		"22 28 0:20 / /sys rw  - sysfs sysfs rw",             // double space
		"22 28 -1:20 / /sys rw - sysfs sysfs rw",             // negative
		"22 28 0:20 / /sys - sysfs sysfs rw",                 // no options
		"22 28 0:20 / /sys rw - sysfs sysfs rw\n" + "broken", // second line
	} {
		_, err := Parse(strings.NewReader(line))
		if err == nil {
			t.Errorf("Parse(%q) accepted", line)
		}
	}

	_, err := Parse(strings.NewReader(strings.Repeat("x", maxLine+1)))
	if err == nil {
		t.Error("an over-long line was accepted")
	}
}

// The table of this process parses, and holds its root.
func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc")
	}

	ms, err := Self()
	if err != nil {
		t.Fatal(err)
	}

	if len(Under(ms, "/")) == 0 {
		t.Fatal("no mount at or under /")
	}
}

// escape is Unescape's inverse for the characters the kernel escapes.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			b.WriteString(`\` + strconv.FormatInt(int64(c)+0o1000, 8)[1:])
		default:
			b.WriteByte(c)
		}
	}

	return b.String()
}

// FuzzParse checks Parse on any table: no panic, and a parsed table written out again
// (escaped as the kernel does) parses to the same mounts.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"))
	f.Add([]byte("1 0 8:1 / /a\\134b rw - ext4 \\040 rw\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}

		var b strings.Builder
		for _, m := range ms {
			fields := []string{strconv.Itoa(m.ID), strconv.Itoa(m.ParentID), strconv.Itoa(m.Major) + ":" + strconv.Itoa(m.Minor), escape(m.Root), escape(m.MountPoint), m.Options}
			fields = append(fields, m.Optional...)
			fields = append(fields, "-", m.FSType, escape(m.Source), m.SuperOptions)
			b.WriteString(strings.Join(fields, " ") + "\n")
		}

		again, err := Parse(strings.NewReader(b.String()))
		if err != nil || !reflect.DeepEqual(again, ms) {
			t.Fatalf("round trip of %q:\n%s\nparses to %+v, %v\nwant %+v", data, b.String(), again, err, ms)
		}
	})
}
