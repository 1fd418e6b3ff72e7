# Thin wrappers over hack/; see README.md.
.PHONY: build test test-unit test-e2e lint demo reference-binaries release clean

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

demo: build
	hack/demo.sh

clean:
	rm -rf bin

# VERSION=v1.2.3 make release: archives for every platform in dist/, their
# sha256 sums, and plugins/etcd.yaml filled from krew.yaml.
release:
	go run ./hack/release --version "$${VERSION:?set VERSION=v1.2.3}" --out dist
