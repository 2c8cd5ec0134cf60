# MegaEngine build, test and tooling entry points. Run `make help`.
SHELL := bash
.SHELLFLAGS := -o pipefail -euc
.DEFAULT_GOAL := build

GO        ?= go
BIN       := bin
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    := $(DESTDIR)$(PREFIX)/bin
FUZZTIME  ?= 10s
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/megaengine/megaengine/rpc.Version=$(VERSION)
CMDS      := $(notdir $(wildcard cmd/*))
TOOLS     := $(filter-out medemo,$(CMDS))

.PHONY: help build install uninstall completions test race fuzz bench bench-speed lint tidy-check demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

install: build ## copy med, mecli and git-remote-mega to $(DESTDIR)$(PREFIX)/bin
	install -d $(BINDIR)
	install -m 0755 $(addprefix $(BIN)/,$(TOOLS)) $(BINDIR)/

uninstall: ## remove what install put into $(DESTDIR)$(PREFIX)/bin
	rm -f $(addprefix $(BINDIR)/,$(TOOLS))

completions: ## regenerate packaging/completions from mecli's command table
	$(GO) run ./cmd/mecli completion bash > packaging/completions/mecli.bash
	$(GO) run ./cmd/mecli completion zsh > packaging/completions/_mecli
	$(GO) run ./cmd/mecli completion fish > packaging/completions/mecli.fish

demo: build ## a narrated local network: share, replicate, clone, update, pull
	$(BIN)/medemo

test: ## run every test once, in random order
	$(GO) test -count=1 -shuffle=on ./...

race: ## run the tests with the race detector
	$(GO) test -count=1 -race ./...

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench: ## run the Go benchmarks (BenchmarkSpeed among them: MegaEngine against git, side by side)
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-speed: ## only the MegaEngine-against-git table; MEGAENGINE_BENCH_REPO=<path> measures a real history
	$(GO) test -timeout 30m -run '^$$' -bench '^BenchmarkSpeed$$' -benchtime 1x ./cmd/med/

lint: tidy-check ## gofmt, go vet and the go.mod tidy check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	@cp go.mod /tmp/go.mod.check && cp go.sum /tmp/go.sum.check
	@$(GO) mod tidy
	@if ! cmp -s go.mod /tmp/go.mod.check || ! cmp -s go.sum /tmp/go.sum.check; then \
	  cp /tmp/go.mod.check go.mod; cp /tmp/go.sum.check go.sum; echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi

clean: ## remove build output
	rm -rf $(BIN)
