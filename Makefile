SHELL := /bin/bash
# Berth: `make run` installs what is needed, builds, starts berthd and boots a container;
# `make test` runs the whole suite. Both run as root on Debian 12.

# Go from PATH, else where the Debian machines of this project keep it.
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT     ?= $(dir $(GO))gofmt
BERTH_DIR ?= /var/lib/berth
BIN       := bin
IMAGE     ?= debian/12
NAME      ?= first
DEB_PKGS  := debootstrap lxd-client lxd dnsmasq-base util-linux iproute2 procps gcc libc6-dev ca-certificates lxcfs btrfs-progs prometheus rsync squashfs-tools libdqlite-dev libraft-dev libuv1-dev libsqlite3-dev nftables
export CGO_ENABLED := 1
# Link the system SQLite (mattn/go-sqlite3 and libdqlite then share one library, the
# way Debian's own LXD builds): every go command below, and the integration tests'
# own builds, inherit it.
export GOFLAGS := -tags=libsqlite3

.PHONY: all build deps run stop test test-unit test-integration bench update-schema update-compat check check-fast fuzz clean proto

all: build

# berthd needs cgo (lxd/nsexec); the CLI does not, and static it starts without the
# dynamic loader (~0.5 ms of every command). berth-init, a container's init until it execs
# systemd, is built first: berthd embeds it (lxd/container/initbin/README.md).
INIT_BIN := lxd/container/initbin/berth-init
build:
	$(GO) build -ldflags='-s -extldflags=-static' -o $(INIT_BIN) ./lxd/berth-init
	$(GO) build -o $(BIN)/berthd ./lxd
	CGO_ENABLED=0 $(GO) build -o $(BIN)/berth ./client/berth

# deps installs the Debian packages and Go modules Berth needs (apt only when one is missing).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	$(GO) mod download

# run: deps, build, start berthd in the background (if not running), build the default
# image (cached), launch a container and say how to get into it.
run: deps build
	@BERTH_DIR=$(BERTH_DIR) ./test/make-run.sh "$(IMAGE)" "$(NAME)"

stop:
	@if [ -f $(BERTH_DIR)/berthd.pid ]; then kill $$(cat $(BERTH_DIR)/berthd.pid) && rm -f $(BERTH_DIR)/berthd.pid; fi

test: deps build check test-unit fuzz test-integration

test-unit:
	$(GO) test -count=1 ./shared/... ./client/... ./lxd/... ./test/testutil/... ./test/bench/... ./test/testlog/...

# check-fast: formatting, vet and the package boundaries (test/boundary).
check-fast:
	@unformatted=$$($(GOFMT) -l $$(find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./test/boundary

# check adds staticcheck (pinned; built once by go run, configured in staticcheck.conf).
# Part of test: ~16 s once staticcheck is built (its first build takes minutes).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
check: check-fast
	$(GO) run $(STATICCHECK) ./...

# proto regenerates the committed protobuf code of the migration protocol (needs apt's
# protobuf-compiler; protoc-gen-go at the module's protobuf version is installed by go).
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go
proto:
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	cd lxd/migration && PATH=$(CURDIR)/bin:$$PATH protoc --go_out=. --go_opt=paths=source_relative migrate.proto

# fuzz runs every Go fuzz target for FUZZTIME (their seed corpora also run as ordinary
# tests in test-unit). Temporary trees go to /dev/shm: the unpack targets create files on
# every run. A new target only needs a line here.
FUZZTIME ?= 5s
FUZZ_TARGETS := \
	./shared/tarsafe:FuzzSplit \
	./shared/ws:FuzzParseControl \
	./shared/mountinfo:FuzzParse \
	./lxd/images:FuzzUnpack \
	./lxd/images:FuzzParseMetadata \
	./lxd/images:FuzzReadMetadata \
	./lxd/backup:FuzzBackupMember \
	./lxd/backup:FuzzSplitBackup \
	./lxd:FuzzAPIBody \
	./client:FuzzSyncListElems
# Go's fuzzer can end a run with "context deadline exceeded" and no failing input when its
# time runs out while it minimizes a new interesting input: such a run is tried once more;
# a real failure (it writes a failing input) never is.
fuzz:
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		for try in 1 2; do \
			out=$$(TMPDIR=/dev/shm $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s "$${t%%:*}" 2>&1); rc=$$?; \
			echo "$$out" | grep -Ev '^fuzz: elapsed'; \
			[ $$rc -eq 0 ] && break; \
			if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
				echo "fuzz $${t#*:}: the fuzzer's own deadline, not a failing input: once more"; continue; \
			fi; \
			exit 1; \
		done; \
	done

# The integration suite runs its serial tests first, alone, then the rest TEST_PARALLEL at
# a time (see test/integration/parallel_test.go and README.md, Tests). BERTH_TEST_SERIAL=1 runs
# every test alone. Parallel tests' lines interleave: "=== NAME" says whose follow.
# test/testlog prints the progress, writes the whole output to /tmp/berth-integration.log,
# and ends with each failed test's own last lines (CI keeps only what is printed).
TEST_PARALLEL ?= 4
test-integration:
	$(GO) build -o /tmp/berth-testlog ./test/testlog
	$(GO) test -json -count=1 -timeout 55m -parallel $(TEST_PARALLEL) -v ./test/integration/ 2>&1 | /tmp/berth-testlog -log /tmp/berth-integration.log; \
	exit $${PIPESTATUS[0]}

# BENCH_ONLY=exec,lxd runs some sections only (see go run ./test/bench -h); BENCH_DENSITY_N=500
# sizes the density section (50 by default), BENCH_MIGRATE_MB=500 the migrate section's container.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 300x ./lxd/nsexec
	$(GO) run ./test/bench -only "$(BENCH_ONLY)"

update-schema:
	$(GO) test ./lxd/db -run TestUpdateSchema -update

# update-compat rewrites doc/lxd-compat.md (and raises the parity floor) from a run of
# TestLXDParity against a real berthd (root).
update-compat:
	$(GO) test -count=1 -run '^TestLXDParity$$' ./test/integration -update

clean:
	rm -rf $(BIN) $(INIT_BIN)
