package trust

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// Two members share the certificates table: a certificate removed or restricted
// through one must stop being trusted (or be restricted) on the other once it
// refreshes, and what its client left running there is revoked (issue 16 review).
func TestRefreshSeesOtherMembersChanges(t *testing.T) {
	a, d := newStore(t)
	b, err := NewStore(context.Background(), d, quiet()) // member B over the same table
	if err != nil {
		t.Fatal(err)
	}

	var revoked []string
	b.OnRevoke(func(fp string) { revoked = append(revoked, fp) })
	ctx := context.Background()
	_, c1 := clientCert(t, "one")
	_, c2 := clientCert(t, "two")
	fp1, err := a.Add(ctx, c1, api.CertificatePut{Name: "one", Type: api.CertificateTypeClient})
	if err != nil {
		t.Fatal(err)
	}

	fp2, err := a.Add(ctx, c2, api.CertificatePut{Name: "two", Type: api.CertificateTypeClient})
	if err != nil {
		t.Fatal(err)
	}

	_, err = b.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}

	e, ok := b.Lookup(fp2)
	if !ok || e.Restricted {
		t.Fatalf("B does not see A's new certificate: %+v %v", e, ok)
	}

	_, err = a.Delete(ctx, fp1)
	if err != nil {
		t.Fatal(err)
	}

	_, err = a.Update(ctx, fp2, api.CertificatePut{Name: "two", Type: api.CertificateTypeClient, Restricted: true, Projects: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}

	// The bug this guards against: without a refresh B trusts both as before.
	if _, ok := b.Lookup(fp1); !ok {
		t.Fatal("B dropped fp1 by itself: the premise changed")
	}

	n, err := b.Refresh(ctx)
	if err != nil || n != 2 {
		t.Fatalf("refresh revoked %d, %v", n, err)
	}

	if _, ok := b.Lookup(fp1); ok {
		t.Fatal("a certificate removed through A is still trusted by B")
	}

	e, ok = b.Lookup(fp2)
	if !ok || !e.Restricted || len(e.Projects) != 1 || e.Projects[0] != "p1" {
		t.Fatalf("a certificate restricted through A is on B: %+v %v", e, ok)
	}

	if len(revoked) != 2 {
		t.Fatalf("revoked on B: %v", revoked)
	}

	// Nothing changed: nothing revoked.
	n, err = b.Refresh(ctx)
	if err != nil || n != 0 {
		t.Fatalf("idle refresh revoked %d, %v", n, err)
	}
}
