package ws

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// serveSession serves s.Connect the way the operations endpoint does: an
// error before the upgrade becomes its HTTP status.
func serveSession(t *testing.T, s *Session) string {
	t.Helper()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.Connect(r, w)

		var se api.StatusError
		if errors.As(err, &se) {
			http.Error(w, err.Error(), se.Status())
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { s.Close("") })

	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dialer(base string) DialFunc {
	return func(ctx context.Context, secret string) (*Conn, error) {
		c, resp, err := websocket.DefaultDialer.DialContext(ctx, base+"/?secret="+url.QueryEscape(secret), nil)
		if resp != nil {
			_ = resp.Body.Close()
			if err != nil {
				return nil, errors.New(resp.Status)
			}
		}

		return c, err
	}
}

func TestSessionConnect(t *testing.T) {
	s := NewSession(ExecLayout(false))
	dial := dialer(serveSession(t, s))
	ctx := context.Background()

	secrets := s.Secrets()
	if len(secrets) != 4 || secrets[FDControl] == "" || secrets[FDStdin] == secrets[FDStdout] {
		t.Fatalf("secrets %v", secrets)
	}

	_, err := dial(ctx, "wrong")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("wrong secret: %v, want 403", err)
	}

	conns, err := ConnectStreams(ctx, secrets, ExecLayout(false).Streams, dial)
	if err != nil {
		t.Fatalf("ConnectStreams: %v", err)
	}

	for _, c := range conns {
		t.Cleanup(func() { _ = c.Close() })
	}

	err = s.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}

	_, err = dial(ctx, secrets[FDStdout])
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("second connection on a stream: %v, want 400", err)
	}

	if s.Conn(FDControl) == nil || s.Conn(FDStderr) == nil {
		t.Error("connected streams missing")
	}
}

// A non-interactive exec starts without control (old clients never open
// it); an interactive one waits for it, and times out without it.
func TestSessionRequiredStreams(t *testing.T) {
	s := NewSession(ExecLayout(false))
	dial := dialer(serveSession(t, s))
	ctx := context.Background()

	_, err := ConnectStreams(ctx, s.Secrets(), []string{FDStdin, FDStdout, FDStderr}, dial)
	if err != nil {
		t.Fatal(err)
	}

	err = s.Wait(ctx)
	if err != nil {
		t.Fatalf("without control: %v", err)
	}

	if testing.Short() {
		return
	}

	s = NewSession(ExecLayout(true))
	dial = dialer(serveSession(t, s))

	_, err = ConnectStreams(ctx, s.Secrets(), []string{FDStdin}, dial)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = s.Wait(ctx)
	if !errors.Is(err, ErrConnectTimeout) || time.Since(start) < ConnectTimeout-100*time.Millisecond {
		t.Errorf("interactive without control: %v after %v, want the timeout after %v", err, time.Since(start), ConnectTimeout)
	}
}

func TestConnectStreamsMissingSecret(t *testing.T) {
	s := NewSession(ConsoleLayout())
	dial := dialer(serveSession(t, s))

	_, err := ConnectStreams(context.Background(), s.Secrets(), ExecLayout(false).Streams, dial)
	if err == nil || !strings.Contains(err.Error(), "offers no") {
		t.Errorf("err = %v", err)
	}
}

func TestSecrets(t *testing.T) {
	secret := NewSecret()
	if len(secret) != 64 || secret == NewSecret() {
		t.Fatalf("secret %q", secret)
	}

	if SecretMatches("", "") || SecretMatches(secret, secret+"x") || !SecretMatches(secret, secret) {
		t.Fatal("SecretMatches")
	}
}
