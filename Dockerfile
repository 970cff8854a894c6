# syntax=docker/dockerfile:1
# Dealroom: one static binary on a distroless base, running as non-root.
#
#   docker build -t dealroom .
#   docker run -p 8080:8080 -v dealroom-data:/data dealroom
#
# Without DEALROOM_MONGO_URI and DEALROOM_REDIS_URL it runs the embedded
# default, with its store, attachments and generated JWT secret in /data.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# Pure Go (bbolt, no cgo): a static binary that needs no libc.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/dealroom ./cmd/dealroom \
 && mkdir -p /out/data

# static-debian12 has CA certificates and tzdata, and a nonroot user
# (65532) that owns the data directory.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dealroom /dealroom
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV DEALROOM_DATA_DIR=/data DEALROOM_ADDR=:8080
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/dealroom"]
CMD ["serve"]
