# Thin wrappers over hack/; see README.md.
.PHONY: build test test-unit test-e2e lint demo demo-node reference-binaries release clean bench bench-smoke fuzz

build:
	hack/build.sh

lint:
	hack/lint.sh

test:
	hack/test.sh

test-unit:
	hack/test.sh unit

test-e2e:
	hack/test.sh e2e

reference-binaries:
	hack/reference-binaries.sh

# Against etcdctl and etcdutl on a real 3-member cluster (docs/benchmarks.md);
# BENCH_FLAGS="-pods=20000 -reps=5" changes sizes and runs.
bench:
	hack/bench.sh $(BENCH_FLAGS)

# Tiny sizes, one run each: every comparison must run; numbers are not judged.
bench-smoke:
	hack/bench.sh --smoke

# Every fuzz target for FUZZTIME each (default 1m); new crashers land in
# the package's testdata/fuzz, to be committed with their fix.
fuzz:
	hack/fuzz.sh

demo: build
	hack/demo.sh

# Three control-plane nodes on real kubelets, bootstrapped with init and
# join (needs root).
demo-node:
	hack/demo-node.sh

clean:
	rm -rf bin

# VERSION=v1.2.3 make release: archives for every platform in dist/, their
# sha256 sums, and plugins/etcd.yaml filled from krew.yaml.
release:
	go run ./hack/release --version "$${VERSION:?set VERSION=v1.2.3}" --out dist
