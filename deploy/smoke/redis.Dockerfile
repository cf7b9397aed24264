# Redis for scripts/compose-smoke.sh, standing in for the official redis:7 image (which cannot be
# pulled there): Debian bookworm's redis-server (7.0) on the debootstrap base. Like the official
# image it runs as the redis user with its data in /data, and it takes its settings from the
# command docker-compose.yml gives it. Built with --network host so apt reaches whatever Debian
# mirror the host reaches.
ARG BASE_IMAGE=gantry-smoke/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--dir", "/data", "--protected-mode", "no"]
