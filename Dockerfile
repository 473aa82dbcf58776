# Storefront API: one image for the server and for its migrations.
#
#   make image          builds it (hack/image/image.mk: BuildKit, CA secret, base selection)
#   make print-image    prints the reference it built
#
# Runs as 10001:10001 on a read-only root filesystem (only /tmp is written),
# with no compiler, and with every module's bytecode compiled at build time.
# Migrations: `docker run ... IMAGE alembic upgrade head` (WORKDIR holds
# alembic.ini; DB_WAIT_SECONDS makes it wait for the database).
#
# BASE_IMAGE: the official python image by default. Where no registry can be
# reached, `make base-image` builds a Debian one (python3 in /usr/bin instead
# of /usr/local/bin); both stages use the same base, so the virtual
# environment's interpreter path is valid in the runtime stage either way.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- builder: the locked dependencies in /opt/venv ---------------------------
FROM ${BASE_IMAGE} AS builder

# uv is pinned like the Makefile's UV_VERSION (make image passes it).
ARG UV_VERSION=0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml uv.lock ./

# The only step that downloads. Where TLS to PyPI is intercepted, the
# machine's CA bundle comes in as a BuildKit secret (`--secret
# id=ca,src=<bundle>`, as make image passes it): a tmpfs at /run/secrets/ca
# for this RUN only, never in a layer. PIP_CERT is pip's, SSL_CERT_FILE uv's.
# Without the secret, pip and uv trust their own CA bundles. The pip and uv
# download caches are cache mounts: kept between builds, never in the image.
RUN --mount=type=secret,id=ca \
    --mount=type=cache,id=storefront-pip,target=/root/.cache/pip,sharing=locked \
    --mount=type=cache,id=storefront-uv,target=/root/.cache/uv,sharing=locked \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}" \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project

# --- runtime -------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

# A fixed numeric user, so Kubernetes can check runAsNonRoot without a name.
# HOME is /tmp: the only writable place, and the one an arbitrary UID without
# a passwd entry (OpenShift style) still gets.
RUN groupadd --system --gid 10001 storefront \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /tmp --no-create-home --shell /usr/sbin/nologin storefront

# ENVIRONMENT=production: an image started without configuration must refuse
# the public development signing key, not run with it (it then needs
# SECRET_KEY); `-e ENVIRONMENT=development` opts out.
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    ENVIRONMENT=production \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# Bytecode now, as root: at run time the root filesystem is read-only and
# PYTHONDONTWRITEBYTECODE is set, so nothing would ever be cached and every
# start would compile from source. uv compiled /opt/venv in the builder; here
# the application, its migrations, and the standard library (the official
# image deletes its .pyc files to stay small; Debian's python3 has them, and
# then this writes nothing).
RUN python3 -m compileall -q -j 0 app migrations \
    && python3 -m compileall -q -j 0 "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

USER 10001:10001
EXPOSE 8000
# What the kubelet and `docker stop` send; uvicorn shuts down gracefully on it.
STOPSIGNAL SIGTERM

# Docker and Compose use this; Kubernetes ignores it (the chart has its own
# probes). No curl in slim images: Python's urllib, with a short timeout.
# HEALTHCHECK_URL is there for a container whose server listens elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:8000/livez'), timeout=3)"]

# ONE uvicorn process, exec form, as PID 1 (it handles SIGTERM itself).
#   --timeout-keep-alive 75: longer than the idle timeout of the load balancers
#     in front (60 s for AWS ALB and ingress-nginx upstream keep-alive), so the
#     balancer always closes an idle connection first; otherwise it can send a
#     request on a connection uvicorn is closing, and the client gets a 502.
#     (Google's HTTP(S) load balancers keep 600 s: run behind them with 620.)
#   --timeout-graceful-shutdown 20: in-flight requests get 20 s after SIGTERM
#     (after SHUTDOWN_DRAIN_SECONDS of serving with /readyz at 503); longer
#     ones are answered 503. The Helm chart's terminationGracePeriodSeconds
#     must cover SHUTDOWN_DRAIN_SECONDS + 20 + a few seconds of lifespan
#     shutdown (closing pools), e.g. drain 5 s -> 30 s, before the kubelet
#     sends SIGKILL.
#   --no-proxy-headers: the app applies X-Forwarded-For/-Proto itself, and
#     only from the proxies TRUSTED_PROXIES names (none by default), so a
#     client cannot choose the address the rate limits count.
#   --no-access-log: the app writes its own JSON access log.
#   --log-config: uvicorn's own lines (startup, errors, a failed start before
#     the app configures logging) in the app's JSON, so every line parses.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "on", "--loop", "uvloop", "--http", "httptools", "--no-proxy-headers", "--timeout-graceful-shutdown", "20", "--timeout-keep-alive", "75", "--no-access-log", "--log-config", "app/platform/log_config.json"]

# Last, so that a new commit changes only the image config, never a layer.
# CREATED is the commit time (make image), which keeps rebuilds reproducible.
ARG BASE_IMAGE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="storefront" \
      org.opencontainers.image.description="Storefront REST API (FastAPI, uvicorn); also runs its Alembic migrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
