package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestLXCProjectImages drives features.images with Debian's lxc: an image imported into
// a project with the feature is its own (no other project sees it), an alias name lives
// in that project and in the default one pointing at different images, a delete in the
// project leaves the default project's image of the same fingerprint and its files, a
// launch resolves its alias in its own project, a project without the feature uses the
// default project's images, and the feature is not changed on a project that is not empty.
func TestLXCProjectImages(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)
	realFP := fileSHA256(t, imagePath)
	tiny := absoluteNamesImage(t)
	tinyFP := fileSHA256(t, tiny)

	l.must("project", "create", "pa") // features.images on by default, as LXD 5.0
	l.must("project", "create", "pb")
	l.must("project", "create", "pshared", "-c", "features.images=false")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "c1", "--project", "pa")
		_, _ = l.run("delete", "-f", "cx", "--project", "default")
		for _, fp := range []string{realFP, tinyFP} {
			_, _ = l.run("image", "delete", fp, "--project", "pa")
		}

		for _, p := range []string{"pa", "pb", "pshared"} {
			_, _ = l.run("project", "delete", p)
		}
	})

	if out := l.must("project", "get", "pa", "features.images"); strings.TrimSpace(out) != "true" {
		t.Errorf("a new project's features.images = %q, want true", out)
	}

	// pa starts empty: the default project's debian/12 is not its image.
	if fps := projectImages(t, d, "pa"); len(fps) != 0 {
		t.Fatalf("a new project with features.images lists images: %v", fps)
	}

	// The same file into pa, under an alias the default project also has, pointing
	// there at another image.
	l.must("image", "import", imagePath, "--alias", "deb", "--project", "pa")
	l.must("image", "import", tiny, "--alias", "deb", "--project", "default")

	if fps := projectImages(t, d, "pa"); len(fps) != 1 || fps[0] != realFP {
		t.Fatalf("pa's images = %v, want [%s]", fps, realFP)
	}

	if fps := projectImages(t, d, "pb"); len(fps) != 0 {
		t.Errorf("pb sees other projects' images: %v", fps)
	}

	if fps := projectImages(t, d, "default"); len(fps) != 2 {
		t.Errorf("default's images = %v, want its debian/12 and the tiny one", fps)
	}

	// A project without the feature uses the default project's images and aliases.
	if fps := projectImages(t, d, "pshared"); len(fps) != 2 {
		t.Errorf("a project without features.images lists %v, want the default project's two", fps)
	}

	for proj, want := range map[string]string{"pa": realFP, "default": tinyFP, "pshared": tinyFP} {
		code, env := d.raw("GET", "/1.0/images/aliases/deb?project="+proj, nil)
		var a api.ImageAliasesEntry
		_ = json.Unmarshal(env.Metadata, &a)
		if code != http.StatusOK || a.Target != want {
			t.Errorf("alias deb in %s: %d %s -> %q, want %s", proj, code, env.Error, a.Target, want)
		}
	}

	out := l.must("image", "list", "--project", "pa", "--format", "csv", "-c", "lF")
	if !strings.Contains(out, "deb,"+realFP) || strings.Contains(out, "debian/12") || strings.Contains(out, tinyFP) {
		t.Errorf("lxc image list in pa:\n%s", out)
	}

	// Edit and alias changes in pa touch only pa's rows.
	// lxc image edit reads the YAML from stdin when it is not a terminal.
	out, err := lxcIn(l, "properties:\n  owner: pa\npublic: false\nauto_update: false\n", "image", "edit", "deb", "--project", "pa")
	if err != nil {
		t.Fatalf("lxc image edit in pa: %v\n%s", err, out)
	}

	if _, img := projectImage(t, d, "pa", realFP); img.Properties["owner"] != "pa" {
		t.Errorf("pa's edit did not reach pa's image: %v", img.Properties)
	}

	if _, img := projectImage(t, d, "default", realFP); img.Properties["owner"] == "pa" {
		t.Errorf("pa's edit reached the default project's image: %v", img.Properties)
	}

	l.must("image", "alias", "create", "extra", realFP, "--project", "pa")
	if code, _ := d.raw("GET", "/1.0/images/aliases/extra", nil); code != http.StatusNotFound {
		t.Errorf("pa's alias is visible in the default project: %d", code)
	}

	// Launch in pa from pa's alias: pa's image, not the default project's "deb".
	l.must("launch", "deb", "c1", "--project", "pa")
	if got := strings.TrimSpace(l.must("config", "get", "c1", "volatile.base_image", "--project", "pa")); got != realFP {
		t.Errorf("c1 in pa made from %q, want pa's %s", got, realFP)
	}

	l.must("init", "deb", "cx", "--project", "default")
	if got := strings.TrimSpace(l.must("config", "get", "cx", "volatile.base_image", "--project", "default")); got != tinyFP {
		t.Errorf("cx in default made from %q, want default's %s", got, tinyFP)
	}

	l.must("delete", "cx", "--project", "default")

	// Not empty: the feature does not change under its images and instances.
	out = l.fails("project", "set", "pa", "features.images=false")
	if !strings.Contains(out, "features can only be changed on empty projects") {
		t.Errorf("feature change on a project with images refused with:\n%s", out)
	}

	if v := strings.TrimSpace(l.must("project", "get", "pa", "features.images")); v != "true" {
		t.Errorf("pa's features.images after the refused change = %q", v)
	}

	// A delete in pa leaves the default project's image of that fingerprint, its
	// file and its pool tree.
	l.must("delete", "-f", "c1", "--project", "pa")
	l.must("image", "delete", "deb", "--project", "pa")
	if fps := projectImages(t, d, "pa"); len(fps) != 0 {
		t.Errorf("pa's images after its delete: %v", fps)
	}

	if code, _ := projectImage(t, d, "default", realFP); code != http.StatusOK {
		t.Fatalf("pa's delete removed the default project's image: %d", code)
	}

	if _, err := os.Stat(filepath.Join(d.dir, "images", realFP)); err != nil {
		t.Errorf("pa's delete removed the file the default project's image needs: %v", err)
	}

	if len(d.poolImages(t)) == 0 {
		t.Error("pa's delete removed the default project's pool tree")
	}

	l.must("init", "debian/12", "cx", "--project", "default") // the default project's image still makes instances
	l.must("delete", "cx", "--project", "default")

	// Empty again, the feature changes.
	l.must("project", "set", "pa", "features.images=false")

	// A restricted project changes its own images, not the default project's it shares.
	l.must("project", "create", "plocked", "-c", "restricted=true", "-c", "features.images=false")
	l.must("project", "create", "pown", "-c", "restricted=true")
	t.Cleanup(func() {
		_, _ = l.run("image", "delete", tinyFP, "--project", "pown")
		_, _ = l.run("project", "delete", "plocked")
		_, _ = l.run("project", "delete", "pown")
	})

	out = l.fails("image", "delete", "debian/12", "--project", "plocked")
	if !strings.Contains(out, "restricted") {
		t.Errorf("a restricted project deleting the default project's image refused with:\n%s", out)
	}

	l.must("image", "import", tiny, "--alias", "own", "--project", "pown")
	l.must("image", "delete", "own", "--project", "pown")
	if code, _ := projectImage(t, d, "default", tinyFP); code != http.StatusOK {
		t.Errorf("pown's delete reached the default project's image: %d", code)
	}
}

// lxcIn runs l's lxc with stdin.
func lxcIn(l *lxcRunner, stdin string, args ...string) (string, error) {
	cmd := exec.Command(l.bin, args...)
	cmd.Env = append(os.Environ(), "LXD_DIR="+l.d.dir, "LXD_CONF="+l.conf)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// projectImages lists the fingerprints of a project's images over the API.
func projectImages(t *testing.T, d *daemon, proj string) []string {
	t.Helper()
	code, env := d.raw("GET", "/1.0/images?recursion=1&project="+proj, nil)
	if code != http.StatusOK {
		t.Fatalf("images of %s: %d %s", proj, code, env.Error)
	}

	var list []api.Image
	_ = json.Unmarshal(env.Metadata, &list)
	fps := []string{}
	for _, img := range list {
		fps = append(fps, img.Fingerprint)
	}

	return fps
}

// projectImage reads one image of a project.
func projectImage(t *testing.T, d *daemon, proj, fp string) (int, api.Image) {
	t.Helper()
	code, env := d.raw("GET", "/1.0/images/"+fp+"?project="+proj, nil)
	var img api.Image
	_ = json.Unmarshal(env.Metadata, &img)
	return code, img
}

// TestLXCProjectImagePull: an image pulled from another server with --target-project
// joins that project's image set only (the pull's cache check and import follow the
// project), over the same file the default project's copy of it uses.
func TestLXCProjectImagePull(t *testing.T) {
	parallel(t)
	a := startDaemon(t)
	b := startDaemon(t)
	a.listenHTTPS()
	fp := fileSHA256(t, imagePath)

	lb := newLXCRunner(t, b)
	lb.must("project", "create", "pp")
	t.Cleanup(func() {
		_, _ = lb.run("image", "delete", fp, "--project", "pp")
		_, _ = lb.run("project", "delete", "pp")
	})

	lxc := newLXC(t, b.dir)
	lxc.must("remote", "add", "A", a.trustToken("cli"))
	lxc.in(t).must("image", "copy", "A:debian/12", "local:", "--target-project", "pp", "--alias", "pulled")

	if fps := projectImages(t, b, "pp"); len(fps) != 1 || fps[0] != fp {
		t.Fatalf("pp's images after the pull = %v, want [%s]", fps, fp)
	}

	code, env := b.raw("GET", "/1.0/images/aliases/pulled?project=pp", nil)
	if code != http.StatusOK || !strings.Contains(string(env.Metadata), fp) {
		t.Errorf("alias pulled in pp: %d %s", code, env.Metadata)
	}

	if code, _ := b.raw("GET", "/1.0/images/aliases/pulled", nil); code != http.StatusNotFound {
		t.Errorf("pp's pulled alias is in the default project: %d", code)
	}

	if fps := projectImages(t, b, "default"); len(fps) != 1 {
		t.Errorf("default's images after pp's pull = %v, want its own one", fps)
	}

	lb.must("image", "delete", "pulled", "--project", "pp")
	if _, err := os.Stat(filepath.Join(b.dir, "images", fp)); err != nil {
		t.Errorf("pp's delete removed the default project's file: %v", err)
	}

	noSpool(t, b)
}
