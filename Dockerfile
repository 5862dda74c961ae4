# syntax=docker/dockerfile:1
# Build: a static oktadetect binary with the rule pack embedded.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/oktadetect ./cmd/oktadetect \
 && mkdir -p /out/state

# Run: distroless static, non-root; configs and rules inside, state in /var/lib/oktadetect.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oktadetect /usr/local/bin/oktadetect
COPY --chown=nonroot:nonroot config/ /config/
COPY --chown=nonroot:nonroot rules/ /rules/
# distroless has no shell to mkdir: copy an empty directory for the state.
COPY --from=build --chown=nonroot:nonroot /out/state /var/lib/oktadetect
ENV OKTADETECT_STATE_DIR=/var/lib/oktadetect \
    OKTADETECT_HTTP_ADDRESS=0.0.0.0:4195
USER nonroot:nonroot
VOLUME ["/var/lib/oktadetect"]
EXPOSE 4195
ENTRYPOINT ["/usr/local/bin/oktadetect"]
CMD ["-c", "/config/okta-to-kafka.yaml"]
