# gantry's own image, for docker-compose.yml. Two stages: build with the Go toolchain, run on a
# small Debian: gantry needs no docker CLI and no git, it talks to the engine and GitLab over their APIs.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /gantry ./cmd/gantry

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /gantry /usr/local/bin/gantry
COPY configs/ /etc/gantry/
ENV GANTRY_CONFIG=/etc/gantry/gantry.yaml
EXPOSE 8080
ENTRYPOINT ["gantry"]
CMD ["serve"]
