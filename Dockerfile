# One image for the product's processes: `openstack-gitops` (the reconciler, the entrypoint) and
# `openstack-gitops-autoscaler` and `openstack-gitops-health-watcher` (their manifests set them as the command).
# Helm is built from the same pinned Go module the test bed uses, not downloaded.
FROM golang:1.26-bookworm AS helm
WORKDIR /src
COPY testbed/go/helm/ ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.21.4" \
      -o /out/helm helm.sh/helm/v3/cmd/helm

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=helm /out/helm /usr/local/bin/helm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY openstack_gitops/ openstack_gitops/
COPY reconciler/ reconciler/
COPY autoscaler/ autoscaler/
COPY healthwatcher/ healthwatcher/
COPY testbed/__init__.py testbed/__init__.py
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home openstack-gitops
USER 10001
ENV OPENSTACK_GITOPS_HELM=/usr/local/bin/helm
ENTRYPOINT ["openstack-gitops"]
CMD ["--help"]
