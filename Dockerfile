# FaultMaven service image: the HTTP API, alert webhooks and Slack events on one port.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY bot ./bot
COPY handlers ./handlers
COPY faultmaven ./faultmaven
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /var/lib/faultmaven faultmaven \
 && mkdir -p /var/lib/faultmaven && chown faultmaven /var/lib/faultmaven
COPY --from=build /install /usr/local
USER faultmaven
ENV FAULTMAVEN_DATA_DIR=/var/lib/faultmaven \
    FAULTMAVEN_HOST=0.0.0.0 \
    FAULTMAVEN_PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["faultmaven"]
CMD ["serve"]
