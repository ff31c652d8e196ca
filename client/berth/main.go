// Command berth is the command-line client of berthd. Its verbs, arguments
// and flags follow LXD 5.0's `lxc` so that LXD users' habits carry over.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newApp(os.Stdout, os.Stderr))
	stop()
	os.Exit(code)
}
