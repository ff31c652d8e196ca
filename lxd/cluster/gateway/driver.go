package gateway

import (
	"context"
	"crypto/tls"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	dqdriver "github.com/canonical/go-dqlite/driver"
)

// Client-side deadlines of the global database (cluster notes §1.5).
const (
	// dialTimeout bounds one TCP connect: a blackholed member must not eat the budget
	// of the whole leader search, which visits members one after the other.
	dialTimeout = 200 * time.Millisecond
	// attemptTimeout bounds the probe of one member (dial, TLS, handshake, leader query).
	attemptTimeout = time.Second
	// connectionTimeout bounds the whole leader search of one new connection.
	connectionTimeout = 3 * time.Second
	// leaderWait is how long a new connection waits for the local node to know a
	// leader (the node knows none only while a vote runs, a few ms, or ~0.3-0.6 s after a
	// split vote, at 20 ms latency) before
	// failing with ErrNoLeader.
	leaderWait = 700 * time.Millisecond
	// connectSlice is one round of the leader search (see connector.Connect).
	connectSlice = 700 * time.Millisecond
	// endTimeout bounds COMMIT and ROLLBACK when the transaction's context has no
	// deadline (go-dqlite sends them without any).
	endTimeout = 5 * time.Second
	// rollbackTimeout bounds ROLLBACK, which may run after the context is done.
	rollbackTimeout = time.Second
	// requestTimeout bounds every request but COMMIT on an open connection, whatever
	// the caller's deadline: a pooled connection to a leader that went silent
	// (blackholed, not dead) would otherwise hold its caller, and the write slot of
	// lxd/db, for the whole transaction deadline (10 s). Its expiry is reported as
	// driver.ErrBadConn: nothing was committed, so database/sql and lxd/db retry on a
	// new connection, which searches for the new leader.
	requestTimeout = time.Second
	// watchInterval is how often a leader search asks the local node whether it still
	// knows a leader.
	watchInterval = 50 * time.Millisecond
)

// dial connects to a member's raft address over TLS with the cluster certificate.
func (g *Gateway) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}

	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}

	conn := tls.Client(raw, g.dialTLS)

	hctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()

	err = conn.HandshakeContext(hctx)
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}

	return conn, nil
}

// connector opens connections to the leader through go-dqlite's connector, after
// checking that a leader exists at all.
type connector struct {
	g     *Gateway
	inner driver.Connector
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	// The leader search runs in slices: between them the local node is asked again,
	// so a search chasing a leader that died (the local node still names it until its
	// election timeout) ends as soon as the node knows the cluster has no leader.
	deadline := time.Now().Add(connectionTimeout)

	var dc driver.Conn
	for {
		err := c.g.waitLeader(ctx)
		if err != nil {
			return nil, err
		}

		sctx, cancel := context.WithTimeout(ctx, min(connectSlice, time.Until(deadline)))
		stop := c.g.watchLeaderLoss(sctx, cancel)
		t0 := time.Now()
		dc, err = c.inner.Connect(sctx)
		stop()
		cancel()
		c.g.log.Debug("cluster database: leader search", "took", time.Since(t0), "err", err, "node", c.g.cfg.Address)
		if err == nil {
			break
		}

		if !errors.Is(err, dqdriver.ErrNoAvailableLeader) {
			return nil, err
		}

		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, ErrNoLeader
		}
	}

	inner, ok := dc.(*dqdriver.Conn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("unexpected dqlite connection type %T", dc)
	}

	cn := &conn{Conn: inner, g: c.g}

	// Per connection, on the leader's engine: SQLite leaves foreign keys off.
	_, err := cn.ExecContext(ctx, "PRAGMA foreign_keys = ON", nil)
	if err != nil {
		_ = inner.Close()
		return nil, fmt.Errorf("enabling foreign keys: %w", err)
	}

	return cn, nil
}

func (c *connector) Driver() driver.Driver { return c.inner.Driver() }

// conn is a go-dqlite connection that is thrown away after a timeout (this go-dqlite
// has no validity check, so database/sql would hand a connection to a vanished leader
// out again), translates errors and bounds COMMIT/ROLLBACK.
type conn struct {
	*dqdriver.Conn
	g   *Gateway
	bad atomic.Bool
	// inTx is set between BEGIN and COMMIT/ROLLBACK: nothing is committed before
	// COMMIT, so a timed-out statement inside is safe to retry.
	inTx atomic.Bool
}

var (
	_ driver.Validator          = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
)

func (c *conn) check(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}

	if isTimeout(err) || errors.Is(err, driver.ErrBadConn) {
		if !c.bad.Swap(true) {
			c.g.flushIdle()
		}
	}

	return translate(err)
}

// IsValid tells database/sql not to pool a connection that saw a timeout.
func (c *conn) IsValid() bool { return !c.bad.Load() }

// ResetSession refuses a connection that saw a timeout before it is reused.
func (c *conn) ResetSession(context.Context) error {
	if c.bad.Load() {
		return driver.ErrBadConn
	}

	return nil
}

// request bounds one request by requestTimeout and reports its expiry (not the
// caller's) as driver.ErrBadConn.
func (c *conn) request(ctx context.Context, f func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()

	start := time.Now()
	err := c.check(f(rctx))
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		c.g.log.Debug("cluster database: request timed out, dropping the connection", "took", time.Since(start), "node", c.g.cfg.Address)
		return fmt.Errorf("cluster database request timed out after %v: %w (%w)", requestTimeout, driver.ErrBadConn, err)
	}

	return err
}

// ExecContext outside a transaction keeps the caller's deadline: an autocommit
// statement that timed out may have committed, so it must not come back as
// ErrBadConn (database/sql would run it again).
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !c.inTx.Load() {
		r, err := c.Conn.ExecContext(ctx, query, args)
		return r, c.check(err)
	}

	var r driver.Result
	err := c.request(ctx, func(ctx context.Context) error {
		var err error
		r, err = c.Conn.ExecContext(ctx, query, args)
		return err
	})

	return r, err
}

// QueryContext keeps the caller's deadline: go-dqlite's rows fetch later pages with
// the query's context, so a request deadline would also cut the iteration short. A
// connection to a silent leader is caught by BeginTx, which every lxd/db access starts with.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.Conn.QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.check(err)
	}

	return &rows{Rows: r.(*dqdriver.Rows), c: c}, nil
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	err := c.request(ctx, func(ctx context.Context) error {
		var err error
		s, err = c.Conn.PrepareContext(ctx, query)
		return err
	})
	if err != nil {
		return nil, err
	}

	return &stmt{Stmt: s.(*dqdriver.Stmt), c: c}, nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	defer cancel()

	return c.PrepareContext(ctx, query)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	err := c.request(ctx, func(ctx context.Context) error {
		_, err := c.Conn.BeginTx(ctx, opts)
		return err
	})
	if err != nil {
		return nil, err
	}

	c.inTx.Store(true)

	return &tx{c: c, ctx: ctx}, nil
}

func (c *conn) Begin() (driver.Tx, error) {
	ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	defer cancel()

	return c.BeginTx(ctx, driver.TxOptions{})
}

// tx ends a transaction with a deadline: the transaction's own, else endTimeout.
type tx struct {
	c   *conn
	ctx context.Context
}

func (t *tx) Commit() error {
	defer t.c.inTx.Store(false)

	ctx := context.WithoutCancel(t.ctx)
	// COMMIT's outcome is unknown once it was sent, so its timeout is no ErrBadConn;
	// it gets the transaction's deadline, at most endTimeout.
	deadline, ok := t.ctx.Deadline()
	if limit := time.Now().Add(endTimeout); !ok || deadline.After(limit) {
		deadline = limit
	}

	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	_, err := t.c.Conn.ExecContext(ctx, "COMMIT", nil)

	return t.c.check(err)
}

func (t *tx) Rollback() error {
	defer t.c.inTx.Store(false)

	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()

	_, err := t.c.Conn.ExecContext(ctx, "ROLLBACK", nil)

	return t.c.check(err)
}

type stmt struct {
	*dqdriver.Stmt
	c *conn
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if !s.c.inTx.Load() {
		r, err := s.Stmt.ExecContext(ctx, args)
		return r, s.c.check(err)
	}

	var r driver.Result
	err := s.c.request(ctx, func(ctx context.Context) error {
		var err error
		r, err = s.Stmt.ExecContext(ctx, args)
		return err
	})

	return r, err
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.Stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, s.c.check(err)
	}

	return &rows{Rows: r.(*dqdriver.Rows), c: s.c}, nil
}

type rows struct {
	*dqdriver.Rows
	c *conn
}

func (r *rows) Next(dest []driver.Value) error {
	return r.c.check(r.Rows.Next(dest))
}
