# xmpp-connect as a container: the package and its policy tables; the config file and secrets come from
# outside (compose.yaml mounts examples/compose.yaml and passes secrets as environment variables).
# Build: docker build -t xmpp-connect .
FROM python:3.11-slim AS build
# hatch_build.py compiles the chain entry's C module against OpenSSL's libcrypto; the runtime image has
# libssl3 already (Python's ssl and hashlib link it), so only this stage needs the compiler and headers.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY engine engine
COPY rules rules
COPY mappings mappings
COPY spec spec
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/xmpp-connect xmpp-connect
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER xmpp-connect
WORKDIR /var/lib/xmpp-connect
EXPOSE 8750
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:8750/livez', timeout=2)"]
ENTRYPOINT ["xmpp-connect"]
CMD ["serve", "--config", "/etc/xmpp-connect/config.yaml"]
