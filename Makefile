# pxb: `make demo` runs the main journey on a local cluster; `make test` runs every test tier.
SHELL := /bin/bash
export PXB_CACHE ?= $(HOME)/.cache/pxb
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/pxb-dev/pxb/pkg/version.Version=$(VERSION)
CLUSTER ?= a

.PHONY: all build generate verify test-rules unit integration e2e test stress image release-snapshot test-release test-release-image cluster-up cluster-down demo bench bench-mover bench-objects clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-pxb ./cmd/kubectl-pxb
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pxb-job ./cmd/pxb-job

generate:
	hack/generate.sh

# verify includes test-rules: pxb's alert rules are tested like code.
verify: test-rules
	hack/verify.sh

# promtool, pinned in a module of its own (as goreleaser below); built once into GOCACHE.
PROMTOOL := $(GO) tool -modfile=$(CURDIR)/hack/tools/prometheus/go.mod promtool

# pxb's Prometheus alert rules against their tests (manifests/monitoring).
test-rules:
	cd manifests/monitoring && $(PROMTOOL) test rules prometheus-rules_test.yaml

unit:
	$(GO) test ./...

integration:
	hack/integration.sh

e2e:
	e2e/run.sh

# Every tier, in order of cost.
test: verify unit integration e2e

# A randomized run with SIGKILLs against the repository, a few minutes; not part of test or CI.
stress:
	hack/stress.sh

image:
	hack/image.sh

# goreleaser, pinned in a module of its own so that its dependencies stay out of pxb's go.mod.
GORELEASER := $(GO) tool -modfile=$(CURDIR)/hack/tools/goreleaser/go.mod goreleaser

# The release into dist/, built as a tag would build it but with a snapshot version and nothing published (see
# .goreleaser.yaml); not part of test or CI.
release-snapshot:
	$(GORELEASER) release --snapshot --clean --skip=publish

# Installs that snapshot with Krew into a temporary KREW_ROOT and runs the plugin through kubectl.
test-release: release-snapshot
	$(GO) test -tags release -count=1 -v ./hack/release/

# The snapshot's own job image, imported unchanged into an e2e cluster, installs and runs a backup and a restore.
test-release-image: release-snapshot
	hack/release/image-e2e.sh

cluster-up:
	e2e/cluster.sh up $(CLUSTER)

cluster-down:
	e2e/cluster.sh down $(CLUSTER)

demo:
	hack/demo.sh

bench: bench-mover bench-objects

bench-mover:
	hack/bench-mover.sh

bench-objects:
	hack/bench-objects.sh

clean:
	rm -rf $(BIN) _out dist
