package imagebuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/test/testutil"
)

func TestLoadRecipe(t *testing.T) {
	for _, name := range []string{"debian/12", "debian-12"} {
		r, err := LoadRecipe(name)
		if err != nil {
			t.Fatal(err)
		}

		if r.Suite != "bookworm" || r.Variant != "minbase" || r.Architecture != "amd64" || !strings.Contains(strings.Join(r.Include, ","), "systemd-sysv") {
			t.Errorf("recipe = %+v", r)
		}
	}

	_, err := LoadRecipe("plan9/4")
	if err == nil || !strings.Contains(err.Error(), "debian/12") {
		t.Errorf("unknown image: err = %v, want it to list known images", err)
	}

	_, err = LoadRecipe("../images")
	if err == nil {
		t.Error("LoadRecipe accepted a path")
	}
}

func TestRecipeHash(t *testing.T) {
	a, err := RecipeHash("debian/12")
	if err != nil {
		t.Fatal(err)
	}

	b, err := RecipeHash("debian-12")
	if err != nil {
		t.Fatal(err)
	}

	if a != b || len(a) != 64 {
		t.Errorf("hashes %q and %q", a, b)
	}
}

func TestMirror(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()

		err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	if got := mirrorFrom(dir, "bookworm"); got != DefaultMirror {
		t.Errorf("no sources: %q", got)
	}

	write("sources.list.d/debian.sources", `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
`)
	write("sources.list.d/other.sources.disabled", "Types: deb\nURIs: http://wrong.example/\nSuites: bookworm\n")

	if got := mirrorFrom(dir, "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("deb822: %q", got)
	}

	write("sources.list", "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n")

	if got := mirrorFrom(dir, "bookworm"); got != "http://list.example/debian" {
		t.Errorf("sources.list: %q", got)
	}

	if got := mirrorFrom(dir, "trixie"); got != DefaultMirror {
		t.Errorf("other suite: %q", got)
	}
}

func TestDebootstrapProgress(t *testing.T) {
	var got []string

	prog := &tracker{report: func(stage string, pct int) {
		got = append(got, stage)
	}}

	lines := []string{
		"I: Retrieving InRelease", "I: Retrieving Packages", "I: Resolving dependencies of required packages...",
		"I: Checking component main on http://deb.debian.org/debian...",
		"I: Retrieving adduser 3.134", "I: Validating adduser 3.134", "I: Retrieving apt 2.6.1",
		"W: something", "I: Extracting adduser...", "I: Extracting apt...",
		"I: Installing core packages...", "I: Unpacking required packages...", "I: Unpacking adduser...",
		"I: Configuring required packages...", "I: Configuring apt...", "I: Base system installed successfully.",
	}

	readDebootstrapOutput(strings.NewReader(strings.Join(lines, "\n")), prog, &lineTail{max: 3})

	want := "resolving retrieving extracting installing configuring"
	if compact(got) != want {
		t.Errorf("stages = %v, want %s", got, want)
	}

	if prog.total != 2 {
		t.Errorf("packages counted = %d, want 2", prog.total)
	}
}

func compact(stages []string) string {
	var out []string

	for _, s := range stages {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}

	return strings.Join(out, " ")
}

func TestWriteMetadata(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1750000000, 0)

	err := writeMetadata("debian-12", dir, now)
	if err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(filepath.Join(dir, "metadata.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	var meta imageMetadata

	err = yaml.Unmarshal(data, &meta)
	if err != nil {
		t.Fatal(err)
	}

	if meta.CreationDate != now.Unix() || meta.Architecture != "x86_64" || meta.Properties["description"] != "Debian bookworm (berth)" {
		t.Errorf("metadata = %+v", meta)
	}

	for _, name := range []string{"hostname.tpl", "hosts.tpl"} {
		body, err := os.ReadFile(filepath.Join(dir, "templates", name))
		if err != nil || !strings.Contains(string(body), "{{ instance.name }}") {
			t.Errorf("%s = %q, %v", name, body, err)
		}
	}
}

func TestLockFileExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")

	unlock, err := lockFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	_, err = lockFile(ctx, p)
	if err == nil {
		t.Fatal("second lock was granted while the first is held")
	}

	unlock()

	unlock, err = lockFile(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}

	unlock()
}

func TestRemoveTreeDetachesMounts(t *testing.T) {
	testutil.RequireRoot(t, "mount")

	dir := t.TempDir()
	mnt := filepath.Join(dir, "rootfs/proc")

	err := os.MkdirAll(mnt, 0o755)
	if err != nil {
		t.Fatal(err)
	}

	err = mountTmpfs(mnt)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = unmountDetach(mnt) })

	err = os.WriteFile(filepath.Join(mnt, "inside"), []byte("x"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	err = removeTree(dir)
	if err != nil {
		t.Fatal(err)
	}

	_, err = os.Stat(dir)
	if !os.IsNotExist(err) {
		t.Fatalf("tree still there: %v", err)
	}
}
