# keyguard's image: the webhook (`keyguard serve`) and the credential renderer init container
# (`keyguard render-credentials`) are the same image.
#
# Two stages: the first builds wheels and a virtualenv with pip; the final stage gets only the virtualenv on the
# same slim Python base: no compiler, no pip cache, no source tree. Runs as a numeric non-root user and needs no
# writable path (bytecode is compiled at build time), so `readOnlyRootFilesystem: true` holds.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN python -m venv /opt/keyguard \
 && /opt/keyguard/bin/pip install --no-compile . \
 && /opt/keyguard/bin/python -m compileall -q /opt/keyguard/lib \
 && /opt/keyguard/bin/keyguard --version

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
