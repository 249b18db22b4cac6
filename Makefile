# potrack: `make run` starts the demo server, `make test` runs every test.
GO       ?= go
# The browser the real-browser tests drive. Empty: the tests look on PATH
# for chromium, chromium-browser, google-chrome (internal/browsertest).
CHROMIUM ?=
export CHROMIUM

.PHONY: build run test check bench fuzz chromium clean

# The first build compiles SQLite's C source: about 3 minutes on 2 cores with
# empty Go caches, seconds afterwards. Say so before a long wait in silence.
build:
	@[ -x bin/potrack ] || echo "building potrack (the first build compiles SQLite: a few minutes)..."
	$(GO) build -buildvcs=auto -o bin/potrack ./cmd/potrack

# The demo's admin token is fixed so the README walk-through works as
# pasted; set POTRACK_ADMIN_TOKEN to choose another. Because that token is
# public, the demo listens on loopback only (POTRACK_ADDR to change it). A
# production server gets its own token, or a generated one.
run: build
	POTRACK_ADMIN_TOKEN=$${POTRACK_ADMIN_TOKEN:-potrack-demo-token} \
	POTRACK_ADDR=$${POTRACK_ADDR:-127.0.0.1:8080} ./bin/potrack serve --demo

# Every test, the real-browser ones included, under the race detector; then
# the server's tests (the API scenario tables, the browser's and the
# admin's) once more on PostgreSQL: one suite, two engines. The admin
# page's screenshots are kept in bin/screenshots, and the script's size is
# printed against its budget.
SCREENSHOTS := $(CURDIR)/bin/screenshots
test: chromium check
	@mkdir -p $(SCREENSHOTS)
	POTRACK_SCREENSHOT_DIR=$(SCREENSHOTS) $(GO) test -race -count=1 -timeout 30m ./...
	POTRACK_TEST_ENGINE=postgres $(GO) test -race -count=1 -timeout 30m ./server/
	@$(GO) test -count=1 -run '^TestScriptSize$$' -v ./snippet/ | grep -m1 'gzip -9'
	@echo "admin page screenshots:"; ls -1 $(SCREENSHOTS)/*.png 2>/dev/null || echo "  none: the browser tests were skipped"

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks report ratios measured in one run (docs/architecture.md): the
# Go benchmarks, then the real binary against an empty Fiber handler under
# the same load (internal/loadbench; BENCHFLAGS=-duration 10s to change it).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...
	$(GO) run ./internal/loadbench $(BENCHFLAGS)

# Every Go fuzz target, each for FUZZTIME. Their seeds (f.Add and
# testdata/fuzz/) run as plain tests in make test; a failure found here is
# written to testdata/fuzz/ and kept as a seed from then on.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzzing $$target in $$pkg for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The browser tests need Chromium. When none is found, install Debian's as
# root where apt-get works; otherwise say what to do (the tests then skip,
# or fail when CI is set).
chromium:
	@if [ -n "$(CHROMIUM)" ]; then \
	  command -v "$(CHROMIUM)" >/dev/null || { echo "CHROMIUM=$(CHROMIUM) is not an executable"; exit 1; }; \
	elif command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	     command -v google-chrome >/dev/null || command -v google-chrome-stable >/dev/null || command -v chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests (apt-get, about a minute)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "*** no Chromium found: the browser tests will be skipped (failed under CI)."; \
	  echo "*** install chromium, put it on PATH, or run make test CHROMIUM=/path/to/chrome"; \
	fi

clean:
	rm -rf bin
