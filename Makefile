# potrack: `make run` starts the demo server, `make test` runs every test.
GO       ?= go
CHROMIUM ?= /usr/bin/chromium

.PHONY: build run test check bench chromium clean

build:
	$(GO) build -buildvcs=auto -o bin/potrack ./cmd/potrack

# The demo's admin token is fixed so the README walk-through works as
# pasted; set POTRACK_ADMIN_TOKEN to choose another. Because that token is
# public, the demo listens on loopback only (POTRACK_ADDR to change it). A
# production server gets its own token, or a generated one.
run: build
	POTRACK_ADMIN_TOKEN=$${POTRACK_ADMIN_TOKEN:-potrack-demo-token} \
	POTRACK_ADDR=$${POTRACK_ADDR:-127.0.0.1:8080} ./bin/potrack serve --demo

# Every test, the real-browser ones included, under the race detector. The
# admin page's screenshots are kept in bin/screenshots, and the script's
# size is printed against its budget.
SCREENSHOTS := $(CURDIR)/bin/screenshots
test: chromium check
	@mkdir -p $(SCREENSHOTS)
	POTRACK_SCREENSHOT_DIR=$(SCREENSHOTS) $(GO) test -race -count=1 -timeout 30m ./...
	@$(GO) test -count=1 -run '^TestScriptSize$$' -v ./snippet/ | grep -m1 'gzip -9'
	@echo "admin page screenshots:"; ls -1 $(SCREENSHOTS)/*.png

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks report ratios measured in one run; see the README.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# Debian's Chromium drives the browser tests; install it when missing.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@[ -x $(CHROMIUM) ] || { echo "chromium is missing at $(CHROMIUM)"; exit 1; }

clean:
	rm -rf bin
