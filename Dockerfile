# syntax=docker/dockerfile:1
# Build: docker build -t cluster-dns .   (the image deploy/deployment.yaml runs)

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
COPY tests ./tests
RUN cargo build --release --locked --bin cluster-dns \
    && strip target/release/cluster-dns

# glibc and CA certificates only; runs as the distroless "nonroot" user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/cluster-dns /usr/local/bin/cluster-dns
COPY config/cluster-dns.toml /etc/cluster-dns/cluster-dns.toml
USER 65532:65532
EXPOSE 53/udp 53/tcp 8080/tcp 8181/tcp 9153/tcp
ENTRYPOINT ["/usr/local/bin/cluster-dns"]
CMD ["serve", "--config", "/etc/cluster-dns/cluster-dns.toml"]
