# syntax=docker/dockerfile:1
# ordercast in a container: a static binary (pure Go, CGO_ENABLED=0, the SQLite driver included)
# on a distroless base that has CA certificates, tzdata and a non-root user, and nothing else.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t ordercast .
#   (umask 077; echo "ORDERCAST_SECRET=$(openssl rand -hex 32)" > ordercast.env)
#   docker run -p 8080:8080 -v ordercast-data:/data --stop-timeout 45 --env-file ordercast.env ordercast
#
# --stop-timeout: Docker's default 10 s kills the node as its drain (--drain, 10 s) ends, before
# it closes its database; 45 s covers --shutdown-timeout (30 s).
#
# The secret is required (-e ORDERCAST_SECRET=… works too). The demo runs without one, on a
# database it names itself; its console hands out an admin token, so publish it on the host's
# loopback only, and let it answer only this machine's names (it listens on every interface of
# the container, where the DNS-rebinding check is off by default):
#   docker run -p 127.0.0.1:8080:8080 ordercast serve --demo --loopback-names-only --db /data/demo.db
#
# See docs/deploy.md ("Docker").

# go.mod's version: the official images build with their own toolchain only (GOTOOLCHAIN=local).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
# The build context leaves .git out, so the toolchain cannot record the revision: stamp it.
ARG REVISION=
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.revision=${REVISION}" -o /out/ordercast ./cmd/ordercast
# The data directory, owned by distroless's nonroot user (65532), for the SQLite file.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ordercast /usr/local/bin/ordercast
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
# Defaults for a container; every flag still has its ORDERCAST_* variable (ordercast serve --help).
ENV ORDERCAST_ADDR=:8080 \
    ORDERCAST_DB=/data/ordercast.db \
    ORDERCAST_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
# SIGTERM starts the graceful drain; give the container more than --shutdown-timeout (30s) to
# stop, e.g. docker stop -t 45, or terminationGracePeriodSeconds: 45 on Kubernetes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ordercast"]
CMD ["serve"]
