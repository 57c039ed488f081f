# syntax=docker/dockerfile:1
# switchyard: one static-ish binary on a distroless, non-root runtime.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them. The manifest names the
# criterion benches, so their files must exist for it to parse.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/switchyard /switchyard

# cc-debian12 carries glibc and libgcc_s, all the binary links; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Failover sidecar proxy for LLM calls in Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/switchyard-dev/switchyard"
COPY --from=build /switchyard /usr/local/bin/switchyard
USER 65532:65532
EXPOSE 4000 4001 8443
ENTRYPOINT ["switchyard"]
CMD ["run"]
