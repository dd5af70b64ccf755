# Outpost in a container: the static binary on an empty base, as a non-root
# user, with its state under /data.
#
#   docker build -t outpost --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm outpost version
#   docker run -v outpost-data:/data -v $PWD/outpost.yaml:/etc/outpost/outpost.yaml:ro \
#     -e OUTPOST_KEY_US_EAST -e PAGERDUTY_ROUTING_KEY -p 9797:9797 \
#     outpost evaluator -c /etc/outpost/outpost.yaml --listen 0.0.0.0:9797 --name eval-a
#
# The build stage runs "make build": the same static, stamped binary as a
# release (.ci/run checks that target's output is static).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
ARG VERSION=dev
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build VERSION="${VERSION}" REVISION="${REVISION}" BUILDUSER=docker \
	&& mkdir -p /out/data \
	&& cp outpost /out/outpost \
	&& echo 'outpost:x:65532:65532:outpost:/data:/sbin/nologin' > /out/passwd

FROM scratch
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="outpost" \
	org.opencontainers.image.description="Synthetic monitoring that pages only when regions agree" \
	org.opencontainers.image.licenses="Apache-2.0" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/outpost /outpost
USER 65532:65532
ENV STATE_DIRECTORY=/data
VOLUME ["/data"]
EXPOSE 9797
ENTRYPOINT ["/outpost"]
CMD ["help"]
