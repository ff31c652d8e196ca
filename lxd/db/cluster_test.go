package db

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cluster/gateway"
	"github.com/berth-dev/berth/lxd/db/schema"
	"github.com/berth-dev/berth/shared/api"
)

const (
	backendFile   = "file"
	backendDqlite = "dqlite"
)

// testBackend is what newTestDB opens. TestDqliteBackend switches it while it runs
// the suite's tests again; tests do not run in parallel in this package.
var testBackend = backendFile

// dqliteSuite are the tests that run on both backends. Left out: the file layout,
// PRAGMA and real-lock tests (file only), the read-only pool (a dqlite read
// transaction is an ordinary one), the attempt count under a constant busy error (the
// cluster's retry window ends it first) and the schema update tests (raw files).
var dqliteSuite = map[string]func(*testing.T){
	"Certificates":                              TestCertificates,
	"TimesRoundTrip":                            TestTimesRoundTrip,
	"NotFoundKinds":                             TestNotFoundKinds,
	"ImageRoundTrip":                            TestImageRoundTrip,
	"GetImagePrefix":                            TestGetImagePrefix,
	"UpdateAndDeleteImage":                      TestUpdateAndDeleteImage,
	"ImageAliases":                              TestImageAliases,
	"GetPublicImage":                            TestGetPublicImage,
	"ImagesPerProject":                          TestImagesPerProject,
	"InstanceRoundTrip":                         TestInstanceRoundTrip,
	"InstanceEmptyCollectionsAreNotNil":         TestInstanceEmptyCollectionsAreNotNil,
	"GetInstancesSortedWithChildren":            TestGetInstancesSortedWithChildren,
	"CreateInstanceErrors":                      TestCreateInstanceErrors,
	"UpdateInstanceReplaces":                    TestUpdateInstanceReplaces,
	"UpdateInstanceConfigPartial":               TestUpdateInstanceConfigPartial,
	"UpdateInstanceLastUsed":                    TestUpdateInstanceLastUsed,
	"RenameInstance":                            TestRenameInstance,
	"DeleteInstanceCascades":                    TestDeleteInstanceCascades,
	"GetInstanceConfigValues":                   TestGetInstanceConfigValues,
	"Networks":                                  TestNetworks,
	"NodeConfig":                                TestNodeConfig,
	"ProfileProjectSpellings":                   TestProfileProjectSpellings,
	"DefaultProfileSeeded":                      TestDefaultProfileSeeded,
	"ProfileRoundTripAndUpdate":                 TestProfileRoundTripAndUpdate,
	"ProfileInUse":                              TestProfileInUse,
	"DefaultProfileProtected":                   TestDefaultProfileProtected,
	"DefaultProjectSeeded":                      TestDefaultProjectSeeded,
	"ProjectLifeCycle":                          TestProjectLifeCycle,
	"SnapshotRows":                              TestSnapshotRows,
	"SnapshotExpiryUpdate":                      TestSnapshotExpiryUpdate,
	"StoragePools":                              TestStoragePools,
	"StorageVolumesPerProject":                  TestStorageVolumesPerProject,
	"VolumeOwner":                               TestVolumeOwner,
	"UpdateVolumeProjectsKeepsVolumesInDefault": TestUpdateVolumeProjectsKeepsVolumesInDefault,
	"TransactionRollsBackOnError":               TestTransactionRollsBackOnError,
	"TransactionRetriesBusy":                    TestTransactionRetriesBusy,
	"TransactionDoesNotRetryOtherErrors":        TestTransactionDoesNotRetryOtherErrors,
	"NestedTransactionRefused":                  TestNestedTransactionRefused,
	"ConcurrentWriters":                         TestConcurrentWriters,
}

// TestDqliteBackend runs the suite against a single-node dqlite per test.
func TestDqliteBackend(t *testing.T) {
	testBackend = backendDqlite
	t.Cleanup(func() { testBackend = backendFile })

	for name, test := range dqliteSuite {
		t.Run(name, test)
	}
}

var (
	certOnce sync.Once
	testCert tls.Certificate
	certErr  error
)

// clusterCert is one self-signed certificate for all test nodes of the process.
func clusterCert(t testing.TB) tls.Certificate {
	t.Helper()

	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}

		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "berth db test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			DNSNames:     []string{"localhost"},
		}

		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		testCert, certErr = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, err
	})

	if certErr != nil {
		t.Fatal(certErr)
	}

	return testCert
}

func freeAddr(t testing.TB) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = l.Close() }()

	return l.Addr().String()
}

func nodeConfig(t testing.TB) gateway.Config {
	return gateway.Config{Dir: filepath.Join(t.TempDir(), "global"), Address: freeAddr(t), Cert: clusterCert(t)}
}

// newGateway bootstraps a single dqlite node, closed at cleanup.
func newGateway(t testing.TB) *gateway.Gateway {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	g, err := gateway.Bootstrap(ctx, nodeConfig(t))
	if err != nil {
		t.Fatalf("starting dqlite: %v", err)
	}

	t.Cleanup(func() { _ = g.Close() })

	return g
}

func newClusterTestDB(t testing.TB) *DB {
	t.Helper()

	g := newGateway(t)

	db, err := OpenCluster(context.Background(), g.DB(), WithTransient(gateway.IsTransient))
	if err != nil {
		t.Fatalf("opening the cluster database: %v", err)
	}

	return db
}

// TestClusterSchemaMatchesFile: the same updates give dqlite the same schema.
func TestClusterSchemaMatchesFile(t *testing.T) {
	ctx := context.Background()
	file := newTestDB(t)
	cluster := newClusterTestDB(t)

	want, err := schemaDump(ctx, file)
	if err != nil {
		t.Fatal(err)
	}

	got, err := schemaDump(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}

	if got != want {
		t.Fatalf("dqlite schema differs from the file's:\n%s\nwant:\n%s", got, want)
	}
}

// TestClusterQuorumLoss: with 2 of 3 members gone a write through the survivor fails
// within 2 s with a 503 naming the cause, and after a leader loss writes resume.
func TestClusterQuorumLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := gateway.Bootstrap(ctx, nodeConfig(t))
	if err != nil {
		t.Fatal(err)
	}

	gws := []*gateway.Gateway{first}
	t.Cleanup(func() {
		for _, g := range gws {
			_ = g.Close()
		}
	})

	for range 2 {
		g, err := gateway.Join(ctx, nodeConfig(t), []string{first.Address()})
		if err != nil {
			t.Fatal(err)
		}

		gws = append(gws, g)
	}

	waitForVoters(t, first, 3)

	leader, err := first.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var rest []*gateway.Gateway
	var lead *gateway.Gateway
	for _, g := range gws {
		if g.Address() == leader {
			lead = g
			continue
		}

		rest = append(rest, g)
	}

	db, err := OpenCluster(ctx, rest[0].DB(), WithTransient(gateway.IsTransient))
	if err != nil {
		t.Fatal(err)
	}

	_ = lead.Close()

	setK := func(v string) func(ctx context.Context, tx *Tx) error {
		return func(ctx context.Context, tx *Tx) error {
			return tx.UpdateNodeConfig(ctx, map[string]string{"k": v}, nil)
		}
	}

	// The leader is gone: the transaction's retries carry it to the new leader.
	start := time.Now()
	err = db.Transaction(context.Background(), setK("after failover"))
	if err != nil {
		t.Fatalf("write after the leader closed: %v", err)
	}

	t.Logf("leader closed -> transaction committed after %v", time.Since(start))

	_ = rest[1].Close()

	start = time.Now()
	err = db.Transaction(context.Background(), setK("lost"))
	took := time.Since(start)
	t.Logf("2 of 3 closed -> transaction failed after %v: %v", took, err)

	if err == nil {
		t.Fatal("write without quorum succeeded")
	}

	if took > 2*time.Second {
		t.Fatalf("write without quorum took %v to fail, want < 2s", took)
	}

	if !errors.Is(err, ErrUnavailable) || !api.StatusErrorCheck(err, http.StatusServiceUnavailable) ||
		!strings.Contains(err.Error(), "no leader") {
		t.Fatalf("error = %v, want a 503 'cluster database unavailable: no leader'", err)
	}
}

func waitForVoters(t testing.TB, g *gateway.Gateway, want int) {
	t.Helper()

	deadline := time.Now().Add(15 * time.Second)
	for {
		members, err := g.Members(context.Background())
		voters := 0
		for _, m := range members {
			if m.Role == "voter" {
				voters++
			}
		}

		if err == nil && voters >= want {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d voters: %+v, %v", want, members, err)
		}

		time.Sleep(50 * time.Millisecond)
	}
}

func schemaDump(ctx context.Context, db *DB) (string, error) {
	dump, err := schema.Dump(ctx, db.read)
	if err != nil {
		return "", err
	}

	return schema.Normalize(dump), nil
}
