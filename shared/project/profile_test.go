package project

import "testing"

func TestProfileKey(t *testing.T) {
	cases := []struct{ proj, name, key, url string }{
		{"default", "web_1", "web_1", "/1.0/profiles/web_1"},
		{"", "default", "default", "/1.0/profiles/default"},
		{"p1", "web_1", "p1/web_1", "/1.0/profiles/web_1?project=p1"},
		{"p-2", "a b", "p-2/a b", "/1.0/profiles/a%20b?project=p-2"},
	}

	for _, c := range cases {
		key := ProfileKey(c.proj, c.name)
		if key != c.key {
			t.Errorf("ProfileKey(%q, %q) = %q, want %q", c.proj, c.name, key, c.key)
		}

		proj, name := SplitProfile(key)
		want := c.proj
		if want == "" {
			want = Default
		}

		if proj != want || name != c.name {
			t.Errorf("SplitProfile(%q) = %q, %q", key, proj, name)
		}

		if u := ProfileURL(key); u != c.url {
			t.Errorf("ProfileURL(%q) = %q, want %q", key, u, c.url)
		}
	}

	got := ProfileNames([]string{"default", "p1/default", "p1/web"})
	if len(got) != 3 || got[0] != "default" || got[1] != "default" || got[2] != "web" {
		t.Errorf("ProfileNames = %v", got)
	}
}
