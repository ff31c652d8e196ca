// Command berthd is Berth's daemon: it serves LXD's REST API on $BERTH_DIR/unix.socket and
// runs unprivileged system containers, each under its own monitor process.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/lxd/cluster/gateway"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/gcfloor"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/lxd/proxy"
)

// Version is the daemon's version, reported in GET /1.0.
const Version = "0.1.0"

func main() {
	// go-dqlite puts the process-wide SQLite in single-thread mode; the daemon's own
	// SQLite files need multi-thread mode, set before any database is opened.
	err := gateway.ConfigMultiThread()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}

	// Hidden helper subcommands (the per-container monitor and the container's first
	// process) run from a sealed copy of this binary; dispatch them before anything else.
	if container.IsHelper(os.Args) {
		os.Exit(container.HelperMain(os.Args))
	}

	if nsexec.IsHelper(os.Args) {
		os.Exit(nsexec.HelperMain())
	}

	if images.IsSquashfsHelper(os.Args) {
		os.Exit(images.SquashfsHelperMain())
	}

	if proxy.IsHelper(os.Args) {
		os.Exit(proxy.Main(os.Args))
	}

	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	dir := fs.String("dir", envOr("BERTH_DIR", "/var/lib/berth"), "state directory ($BERTH_DIR)")
	debug := fs.Bool("debug", false, "log debug messages")
	version := fs.Bool("version", false, "print the version and exit")
	preseed := fs.String("preseed", "", "apply this `lxd init --preseed` YAML once the API is up (once per content, lxd/preseed.go)")
	err = fs.Parse(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}

	if *version {
		fmt.Println(Version)
		return
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var pf *preseedFile
	if *preseed != "" {
		pf, err = loadPreseed(*dir, *preseed)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			os.Exit(1)
		}

		if pf == nil {
			log.Info("preseed file gone, and a preseed was applied before: nothing to do", "path", *preseed)
		}
	}

	gcfloor.Start() // the daemon only: helpers above keep Go's default, and small heaps
	err = run(*dir, log, pf)
	if err != nil {
		log.Error("berthd stopped", "err", err)
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	v := os.Getenv(key)
	if v == "" {
		return def
	}

	return v
}
