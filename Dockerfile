# The action's image. The runner builds it with plain `docker build`, so it must not
# need BuildKit. PYTHON_IMAGE lets the test bed supply its own base (no registry on
# the internet is reachable there); on GitHub the pinned default is used.
ARG PYTHON_IMAGE=python:3.13-slim@sha256:7c61056e61ac89e852de05f3dc6fa51a6dd2181797bceed46aa725dd7cb2cd3b

FROM ${PYTHON_IMAGE} AS build
COPY pyproject.toml README.md /src/
COPY src /src/src
# A venv, so the image works on bases whose system Python is externally managed (PEP 668).
# pip and setuptools are removed afterwards: no build tools in the final image.
# cryptography (16 MB) comes with PyGithub's pyjwt[crypto] for signing GitHub App JWTs,
# which this action never does; PyJWT imports it only when asked to. Without it the
# image stays within its 200 MB budget. The import line proves the rest still loads.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check /src \
 && /opt/venv/bin/pip uninstall -y -q cryptography \
 && /opt/venv/bin/pip uninstall -y -q pip setuptools wheel 2>/dev/null; \
    find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + ; \
    /opt/venv/bin/python -c "import github, gh_docker_publish.cli"

FROM ${PYTHON_IMAGE}
# The buildx plugin from Debian (trixie: docker-buildx 0.13), run standalone against the
# runner's daemon (it reads DOCKER_HOST itself): no docker CLI (30 MB) is needed to launch
# it, and no engine or compose. apt lists are dropped in the same layer.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-buildx \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
 && /usr/libexec/docker/cli-plugins/docker-buildx version
COPY --from=build /opt/venv /opt/venv
COPY entrypoint.py post.py /opt/
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/venv/bin/python", "/opt/entrypoint.py"]
