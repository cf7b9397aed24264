# gantry's image, for docker-compose.yml. Two stages: build with the Go toolchain, run on a
# small Debian: gantry needs no docker CLI and no git, it talks to the engine and GitLab over their APIs.
# deploy/smoke/gantry.Dockerfile is this runtime stage for scripts/compose-smoke.sh: keep them in step.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /gantry ./cmd/gantry

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
# Not root: uid and gid 10001, numeric so that Kubernetes' runAsNonRoot can check it. A worker
# reaches the Docker socket through the socket's group (docker-compose.yml: group_add).
RUN groupadd --system --gid 10001 gantry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin gantry
COPY --from=build /gantry /usr/local/bin/gantry
# The documented example only; the real config is mounted at /etc/gantry/gantry.yaml.
COPY configs/gantry.example.yaml /etc/gantry/gantry.example.yaml
ENV GANTRY_CONFIG=/etc/gantry/gantry.yaml
USER 10001:10001
EXPOSE 8080
# GET /readyz at server.listen (no curl in the image); a worker's is `gantry healthcheck --worker`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["gantry", "healthcheck"]
ENTRYPOINT ["gantry"]
CMD ["serve"]
