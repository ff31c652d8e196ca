package cluster

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Two (here 16) joiners racing with one token: exactly one is accepted and gets the
// cluster key, the others are refused, and one member row is added (issue 16 review).
func TestTokenSingleUseUnderRace(t *testing.T) {
	s := testMember(t)
	tok, err := s.IssueToken(context.Background(), "n2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	const n = 16
	errs := make([]error, n)
	keys := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := accept(s, "n2", "127.0.0.2:8443", tok.Secret)
			errs[i], keys[i] = err, out.Key
		}()
	}

	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case keys[i] != "":
			t.Fatalf("a refused joiner got the key: %v", err)
		case statusOf(err) != http.StatusForbidden && statusOf(err) != http.StatusConflict:
			t.Logf("joiner %d: %v", i, err) // a busy database is a refusal too
		}
	}

	if ok != 1 {
		t.Fatalf("%d joiners accepted with one token", ok)
	}

	ms, err := s.Members(context.Background())
	if err != nil || len(ms) != 2 {
		t.Fatalf("members after the race: %+v, %v", ms, err)
	}
}
