package db

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql/driver"
	"errors"
	"fmt"
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

// codeErr is an error carrying a SQLite code, as the gateway's errors do.
type codeErr int

func (e codeErr) Error() string   { return "sqlite code" }
func (e codeErr) SQLiteCode() int { return int(e) }

// TestClusterRetryPolicy: a busy cluster database is waited for beyond the 1 s window
// that ends retries of a missing leader.
func TestClusterRetryPolicy(t *testing.T) {
	db := &DB{cluster: true, transient: func(err error) bool {
		var c codeErr
		return errors.As(err, &c) || errors.Is(err, errNoLeaderForTest)
	}}

	long := time.Now().Add(-2 * time.Second)
	if db.giveUp(codeErr(5), 12, long) {
		t.Error("busy gave up after 12 attempts and 2 s")
	}

	if !db.giveUp(codeErr(5), maxBusyAttempts, long) {
		t.Error("busy never gives up")
	}

	if !db.giveUp(errNoLeaderForTest, 2, long) {
		t.Error("no leader retried past the window")
	}

	if db.giveUp(errNoLeaderForTest, 2, time.Now()) {
		t.Error("no leader not retried within the window")
	}

	file := &DB{}
	if !file.giveUp(codeErr(5), maxAttempts, time.Now()) {
		t.Error("file database retries past maxAttempts")
	}
}

var errNoLeaderForTest = errors.New("no leader")

// TestClusterConcurrentMembers: two members write at once through their own handles;
// the leader's write lock makes some attempts busy, and every write still lands.
func TestClusterConcurrentMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first := newGateway(t)
	second, err := gateway.Join(ctx, nodeConfig(t), []string{first.Address()})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = second.Close() })

	var dbs []*DB
	for _, g := range []*gateway.Gateway{first, second} {
		db, err := OpenCluster(ctx, g.DB(), WithTransient(gateway.IsTransient))
		if err != nil {
			t.Fatal(err)
		}

		dbs = append(dbs, db)
	}

	const perMember = 30
	errs := make(chan error, 2*perMember)
	var wg sync.WaitGroup
	for m, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perMember {
				errs <- db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
					key := fmt.Sprintf("m%d.k%d", m, i)
					return tx.UpdateNodeConfig(ctx, map[string]string{key: "v"}, nil)
				})
			}
		}()
	}

	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}

	read(t, dbs[1], func(ctx context.Context, tx *Tx) error {
		config, err := tx.GetNodeConfig(ctx)
		if err != nil {
			return err
		}

		if len(config) != 2*perMember {
			t.Errorf("%d keys written, want %d", len(config), 2*perMember)
		}

		return nil
	})
}

// TestClusterTransientWithoutClassifier: OpenCluster without WithTransient still
// retries what every cluster driver reports in common.
func TestClusterTransientWithoutClassifier(t *testing.T) {
	db := &DB{cluster: true}
	for _, err := range []error{
		gateway.ErrNoLeader, driverBadConn(), codeErr(5), codeErr(6 | 1<<8),
		errors.New("leadership lost"), errors.New("checkpoint in progress"),
	} {
		if !db.isTransient(err) {
			t.Errorf("%v is not transient", err)
		}
	}

	if db.isTransient(codeErr(2067)) || db.isTransient(errors.New("plain")) {
		t.Error("a constraint or plain error is transient")
	}
}

func driverBadConn() error { return fmt.Errorf("wrapped: %w", driver.ErrBadConn) }
