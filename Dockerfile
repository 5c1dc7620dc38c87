# Multi-stage build: compile in the Rust image, run in a slim Debian image as a non-root user.
#
#   docker build -t presence-bridge .
#   docker run -p 8080:8080 \
#     -v $PWD/presence-bridge.toml:/etc/presence-bridge/presence-bridge.toml:ro \
#     -v presence-bridge-data:/data presence-bridge
#
# The config is read from /etc/presence-bridge/presence-bridge.toml (override with
# --config or PRESENCE_BRIDGE_CONFIG). The default SQLite database lives in the /data volume.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
COPY tests ./tests
COPY config ./config
# No default features: the simulators, their test key and the `demo` command stay out.
RUN cargo build --release --locked --no-default-features --bin presence-bridge

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bridge \
    && mkdir -p /data /etc/presence-bridge \
    && chown bridge:bridge /data
COPY --from=build /src/target/release/presence-bridge /usr/local/bin/presence-bridge
COPY config/presence-bridge.example.toml /etc/presence-bridge/presence-bridge.example.toml
USER bridge
# Relative store paths resolve from here: the default sqlite://data/presence-bridge.db is
# /data/presence-bridge.db, inside the volume.
WORKDIR /
VOLUME ["/data"]
EXPOSE 8080
ENV PRESENCE_BRIDGE_CONFIG=/etc/presence-bridge/presence-bridge.toml
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready >/dev/null || exit 1
ENTRYPOINT ["presence-bridge"]
CMD ["run"]
