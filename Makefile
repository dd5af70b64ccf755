# Outpost's build. `make` builds a static binary for this machine;
# `make release` builds every platform with checksums into dist/;
# `make test` runs the whole suite as CI does (.ci/run).

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILDDATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDUSER ?= $(shell whoami)@$(shell hostname)

PKG := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(PKG).Version=$(VERSION) \
	-X $(PKG).Revision=$(REVISION) \
	-X $(PKG).Branch=$(BRANCH) \
	-X $(PKG).BuildDate=$(BUILDDATE) \
	-X $(PKG).BuildUser=$(BUILDUSER)

# Static (no libc: CGO off), reproducible paths (-trimpath).
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'

PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST      ?= dist

.PHONY: build release test clean

build:
	$(GOBUILD) -o outpost ./cmd/outpost

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $(DIST)/outpost-$(VERSION)-$$os-$$arch ./cmd/outpost; \
	done
	cd $(DIST) && sha256sum outpost-* > SHA256SUMS

test:
	.ci/run

clean:
	rm -rf $(DIST) outpost
