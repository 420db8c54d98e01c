# syntax=docker/dockerfile:1
# Multi-stage build: a static ethhook binary on a distroless base, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/ethhook/ethhook/app.Version=${VERSION} -X github.com/ethhook/ethhook/app.Commit=${COMMIT}" \
    -o /out/ethhook .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ethhook /usr/local/bin/ethhook
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/ethhook"]
CMD ["serve", "--all"]
