# berth: see README.md. Every target works offline on a Debian 12 machine
# with Go; `make test` is what CI runs (through .ci/run).

GO          ?= go
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo dev)
PKG         := github.com/berth-dev/berth
# nsenter is cgo (it must run before the Go runtime starts threads), so the
# binaries link glibc statically; netgo/osusergo keep glibc's NSS out.
BUILDFLAGS  := -trimpath -tags netgo,osusergo \
               -ldflags "-s -w -X $(PKG)/internal/version.Version=$(VERSION) -extldflags -static"
TESTFLAGS   ?= -count=1 -timeout 15m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
IMAGES      := _output/images/busybox
DEMO_ID     := berth-demo-$(shell echo $$$$)

.PHONY: all build test test-unit test-integration test-e2e bench images demo demo-runtime lint clean deps

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=1 $(GO) build $(BUILDFLAGS) -o bin/ $$($(GO) list ./cmd/... 2>/dev/null)

# Debian packages the tests and benchmarks use; installed only if missing.
DEB_PACKAGES := busybox-static skopeo docker-registry runc crun umoci podman docker.io nftables iproute2 hyperfine wrk
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

images:
	@command -v busybox >/dev/null 2>&1 && test -x /bin/busybox || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null)
	$(GO) run ./test/mkimages

# All tiers the machine supports. Root tests snapshot the whole machine for
# leaks, so packages run one at a time (-p 1).
test: build images
	$(GO) test -p 1 $(TESTFLAGS) ./...

# Unit tier: no root effects (root-needing tests skip in -short mode).
test-unit:
	$(GO) test -short $(TESTFLAGS) ./...

test-integration: build images
	$(GO) test -p 1 $(TESTFLAGS) $$($(GO) list ./... | grep -v /test/e2e)

test-e2e: build images
	$(GO) test -p 1 $(TESTFLAGS) ./test/e2e/...

bench: build images deps
	$(GO) run ./bench $(BENCHFLAGS)

# The whole stack: a berth daemon (started on a temp root if none runs),
# the offline busybox image loaded, `berth run --rm busybox echo …`.
demo: build images
	@sh hack/demo.sh

# The runtime alone: berth-runtime runs the busybox OCI bundle.
demo-runtime: build images
	@bin/berth-runtime run --bundle $(IMAGES)/bundle $(DEMO_ID)

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin _output
