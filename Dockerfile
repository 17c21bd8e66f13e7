# syntax=docker/dockerfile:1
#
# Hookline in a container: a static binary on distroless, running as nonroot.
#
#   docker build -t hookline --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm hookline --help
#
# The image runs `hookline serve` with the defaults of the binary: the embedded
# broker and store in HOOKLINE_DATA_DIR, and the API on 127.0.0.1:8080, which
# is not reachable from outside the container. To publish the API, set
# HOOKLINE_HTTP_ADDR=0.0.0.0:8080 together with HOOKLINE_API_TOKENS (Hookline
# refuses a non-loopback address without tokens); see docker-compose.yml.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /hookline ./cmd/hookline
# The data directory, owned by the nonroot user (65532) of the final image.
RUN mkdir -p /rootfs/var/lib/hookline

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /hookline /hookline
COPY --from=build --chown=65532:65532 /rootfs/var/lib/hookline /var/lib/hookline
ENV HOOKLINE_DATA_DIR=/var/lib/hookline
WORKDIR /var/lib/hookline
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/hookline"]
CMD ["serve"]
