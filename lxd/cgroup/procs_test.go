package cgroup

import "testing"

func TestMountSuperOptions(t *testing.T) {
	const info = `22 27 0:21 / /proc rw,relatime - proc proc rw
35 30 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
36 30 0:31 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
40 30 0:32 / /mnt/with\040space rw - tmpfs tmpfs rw,size=10k
41 36 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate`

	cases := map[string]string{
		"/sys/fs/cgroup":         "rw,nsdelegate,memory_recursiveprot",
		"/sys/fs/cgroup/unified": "rw,nsdelegate", // the last mount there is the one seen
		"/mnt/with space":        "rw,size=10k",
	}

	for mp, want := range cases {
		got, err := mountSuperOptions(info, mp)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", mp, got, err, want)
		}
	}

	_, err := mountSuperOptions(info, "/nowhere")
	if err == nil {
		t.Error("no error for a missing mount")
	}
}
