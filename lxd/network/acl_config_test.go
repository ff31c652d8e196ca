package network

import (
	"slices"
	"testing"
)

// TestNICACL: a NIC's ACL keys are read, checked and survive the key encoding.
func TestNICACL(t *testing.T) {
	p, err := NICACL(map[string]string{"security.acls": "web, db", "security.acls.default.egress.action": "allow"})
	if err != nil || !slices.Equal(p.Names, []string{"web", "db"}) || p.Egress != "allow" || p.Ingress != "" {
		t.Fatalf("NICACL: %+v %v", p, err)
	}

	back := ParsePortACL(p.Key())
	if !slices.Equal(back.Names, p.Names) || back.Ingress != p.Ingress || back.Egress != p.Egress {
		t.Fatalf("key %q reads back as %+v", p.Key(), back)
	}

	if k := (PortACL{}).Key(); k != "" {
		t.Fatalf("empty key %q", k)
	}

	if back := ParsePortACL(""); len(back.Names) != 0 || back.Ingress != "" || back.Egress != "" {
		t.Fatalf("empty key reads back as %+v", back)
	}

	for name, conf := range map[string]map[string]string{
		"bad name":   {"security.acls": "web;rm"},
		"bad action": {"security.acls.default.ingress.action": "maybe"},
		"too many":   {"security.acls": "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"},
	} {
		if _, err := NICACL(conf); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
