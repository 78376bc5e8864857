# syntax=docker/dockerfile:1
# Arco: the API server, the run worker and the maintenance jobs, from one image.
# Multi-stage: the build stage makes a wheel (and the web UI must already be built
# into src/arco/web/static by `make ui`); the runtime stage installs only the wheel.
# The base is pinned by version; pin it by digest in your registry mirror as well.

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir "build==1.2.2.post1"
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

FROM python:3.11.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="arco" \
      org.opencontainers.image.description="File-native lakehouse catalog and asset orchestrator"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARCO_LOG_FORMAT=json
RUN groupadd --system --gid 10001 arco \
    && useradd --system --uid 10001 --gid arco --home-dir /home/arco --create-home arco
COPY --from=build /dist/*.whl /tmp/
# The otel extra: spans go to $OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
RUN pip install --no-cache-dir "$(ls /tmp/arco-*.whl)[otel,dask]" && rm /tmp/arco-*.whl
USER 10001:10001
WORKDIR /home/arco
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["arco"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
