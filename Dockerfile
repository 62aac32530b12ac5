# syntax=docker/dockerfile:1
# Build: a static binary (CGO off; SQLite is the pure-Go modernc driver).
FROM golang:1.27-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/authgate ./cmd/authgate

# Run: distroless static, non-root. Config from a mounted file (/etc/authgate/authgate.yaml)
# and/or AUTHGATE_* environment variables; secrets via *_file keys pointing at mounted files.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authgate /usr/local/bin/authgate
ENV AUTHGATE_CONFIG=/etc/authgate/authgate.yaml
USER nonroot:nonroot
# 8080: main listener; 9091: ops listener (/healthz, /readyz, /metrics, /api). Bind the ops
# listener to 0.0.0.0:9091 in the config only inside a private network (Kubernetes probes).
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/authgate"]
CMD ["serve"]
