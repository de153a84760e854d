# The flashsale binary in a distroless image: `docker build -t flashsale .`, then
# `docker run flashsale serve | worker | migrate | demo`. docker-compose.yml runs the whole set.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The version /openapi.json reports (docker build --build-arg VERSION=v1.2.3); .git is not in the
# build context (.dockerignore), so the toolchain has no commit to stamp.
ARG VERSION=dev
# gen/ and sqlc output are committed, so no code generators are needed here.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X github.com/flashsale/flashsale/internal/buildinfo.Version=${VERSION}" \
    -o /out/flashsale ./cmd/flashsale

# static: no libc needed (CGO_ENABLED=0); nonroot: uid 65532, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/flashsale /flashsale
USER nonroot:nonroot
# 8080 REST (grpc-gateway, UI, OpenAPI), 9090 gRPC.
EXPOSE 8080 9090
ENTRYPOINT ["/flashsale"]
CMD ["serve"]
