# keyguard's image: the webhook (`keyguard serve`) and the credential renderer init container
# (`keyguard render-credentials`) are the same image.
#
# Two stages: the first builds a virtualenv with pip and compiles the admission path; the final stage gets only the
# virtualenv on the same slim Python base: no compiler, no mypy, no pip cache, no source tree. Runs as a numeric
# non-root user and needs no writable path (bytecode is compiled at build time), so `readOnlyRootFilesystem: true`
# holds.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# The admission path compiled with mypyc (webhook/native.py) into /opt/keyguard/keyguard-native: the compiler, the
# Python headers and mypy live in this stage only (mypy in its own venv, which sees keyguard's packages).
RUN headers="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev $([ -f "$headers" ] || echo python3-dev) >/dev/null \
 && python -m venv /opt/keyguard \
 && /opt/keyguard/bin/pip install --no-compile . \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install mypy setuptools \
 && /opt/keyguard/bin/python -c 'import site; print(site.getsitepackages()[0])' \
      > "$(/opt/build/bin/python -c 'import site; print(site.getsitepackages()[0])')/keyguard.pth" \
 && /opt/build/bin/python -m webhook.native_build --out /opt/keyguard/keyguard-native \
 && /opt/keyguard/bin/python -m compileall -q /opt/keyguard/lib \
 && KEYGUARD_ENGINE=compiled /opt/keyguard/bin/keyguard --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="keyguard" \
      org.opencontainers.image.description="Admission webhook that keeps object-storage keys out of Flyte task pods" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/keyguard/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /opt/keyguard /opt/keyguard
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["keyguard"]
CMD ["serve", "--host=0.0.0.0", "--port=8443", "--tls-cert=/etc/keyguard/tls/tls.crt", "--tls-key=/etc/keyguard/tls/tls.key"]
