SHELL := /bin/bash
# Berth: `make run` installs what is needed, builds, starts berthd and boots a container;
# `make test` runs the whole suite. Both run as root on Debian 12.

# Go from PATH, else where the Debian machines of this project keep it.
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BERTH_DIR ?= /var/lib/berth
BIN       := bin
IMAGE     ?= debian/12
NAME      ?= first
DEB_PKGS  := debootstrap lxd-client dnsmasq-base util-linux iproute2 procps gcc libc6-dev ca-certificates lxcfs btrfs-progs
export CGO_ENABLED := 1

.PHONY: all build deps run stop test test-unit test-integration bench update-schema check clean

all: build

# berthd needs cgo (lxd/nsexec); the CLI does not, and static it starts without the
# dynamic loader (~0.5 ms of every command).
build:
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

test: deps build test-unit test-integration

test-unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./shared/... ./client/... ./lxd/...

test-integration:
	$(GO) test -count=1 -timeout 30m -v ./test/integration/ 2>&1 | tee /tmp/berth-integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go'; \
	exit $${PIPESTATUS[0]}

# BENCH_ONLY=exec,lxd runs some sections only (see go run ./test/bench -h).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 300x ./lxd/nsexec
	$(GO) run ./test/bench -only "$(BENCH_ONLY)"

update-schema:
	$(GO) test ./lxd/db -run TestUpdateSchema -update

clean:
	rm -rf $(BIN)
