package ip

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestWholeRetriesInterruptedDumps: an interrupted dump is read again until it is whole,
// dumpAttempts times at most; any other error is returned at once.
func TestWholeRetriesInterruptedDumps(t *testing.T) {
	interrupted := fmt.Errorf("listing: %w", netlink.ErrDumpInterrupted)
	other := errors.New("no such device")
	cases := []struct {
		errs      []error // what each call returns, in turn
		wantCalls int
		wantErr   error
	}{
		{[]error{nil}, 1, nil},
		{[]error{interrupted, interrupted, nil}, 3, nil},
		{[]error{other}, 1, other},
		{[]error{interrupted, other}, 2, other},
		{[]error{interrupted, interrupted, interrupted, interrupted, interrupted, nil}, dumpAttempts, netlink.ErrDumpInterrupted},
	}

	for i, c := range cases {
		calls := 0
		out, err := whole(func() (int, error) {
			calls++
			return calls, c.errs[calls-1]
		})

		if calls != c.wantCalls || out != calls || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("case %d: %d calls, answer %d, error %v; want %d calls, the last answer, error %v", i, calls, out, err, c.wantCalls, c.wantErr)
		}
	}
}
