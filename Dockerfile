# The kubectl-etcd image, for manifests/backup-cronjob.yaml and for running the
# plugin in a pod:
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t kubectl-etcd .
#
# The final stage holds one static binary on distroless static: CA
# certificates, /etc/passwd with a nonroot user (65532), no shell, no
# package manager.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/kubectl-etcd/kubectl-etcd/pkg/version.Version=${VERSION}" \
      -o /out/kubectl-etcd ./cmd/kubectl-etcd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kubectl-etcd /usr/local/bin/kubectl-etcd
# nonroot by default; the backup CronJob runs it as root to read the
# root-owned etcd keys on the host (see the comment there).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubectl-etcd"]
