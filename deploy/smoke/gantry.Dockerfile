# gantry's image for scripts/compose-smoke.sh: the runtime stage of the repository's Dockerfile,
# on a Debian base imported from a debootstrap rootfs (nothing can be pulled there) and with the
# binary built on the host, since the Go toolchain image cannot be pulled either. Keep the user,
# the paths and the health check in step with ../../Dockerfile.
ARG BASE_IMAGE=gantry-smoke/debian:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 gantry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin gantry
COPY gantry /usr/local/bin/gantry
COPY gantry.example.yaml /etc/gantry/gantry.example.yaml
ENV GANTRY_CONFIG=/etc/gantry/gantry.yaml
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["gantry", "healthcheck"]
ENTRYPOINT ["gantry"]
CMD ["serve"]
