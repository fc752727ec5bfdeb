# One image for every hoctap service: `hoctap gateway`, `hoctap project`, `hoctap api`, and the CLI.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p hoctap-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 hoctap
COPY --from=build /src/target/release/hoctap /usr/local/bin/hoctap
USER hoctap
ENTRYPOINT ["hoctap"]
CMD ["--help"]
