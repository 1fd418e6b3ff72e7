# Thin wrappers over hack/; see README.md.
.PHONY: build test test-unit test-e2e lint demo reference-binaries clean

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
