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
# The probe of the API service's healthcheck in docker-compose.yml: the final
# image has no shell, curl or wget. It GETs the URL given as its argument and
# exits 0 on a 2xx answer.
COPY <<'EOF' /probe/main.go
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		os.Exit(1)
	}
}
EOF
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd /probe && go build -trimpath -ldflags "-s -w" -o /healthcheck main.go
# The data directory, owned by the nonroot user (65532) of the final image.
RUN mkdir -p /rootfs/var/lib/hookline

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /hookline /hookline
COPY --from=build /healthcheck /healthcheck
COPY --from=build --chown=65532:65532 /rootfs/var/lib/hookline /var/lib/hookline
ENV HOOKLINE_DATA_DIR=/var/lib/hookline
WORKDIR /var/lib/hookline
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/hookline"]
CMD ["serve"]
