# The action's image. The runner builds it with plain `docker build` (for `uses: ./` and
# branches; releases pull the prebuilt image by digest), so it must not need BuildKit: no
# heredocs, no RUN --mount, no ARG in FROM.
#
# The base is a plain, digest-pinned FROM so that Dependabot can read and bump it. The test
# bed, which reaches no registry on the internet, builds a copy of this file whose FROM
# lines name its own Debian trixie base instead (tests/testbed/action_image.py).
FROM python:3.13-slim@sha256:7c61056e61ac89e852de05f3dc6fa51a6dd2181797bceed46aa725dd7cb2cd3b AS build

# buildx >= 0.29 (BuildKit features need it; trixie has 0.13) from Debian sid, with a private
# apt configuration for this one download (the image's sources stay trixie's). apt checks the
# .deb against sid's signed Release file; only the plugin binary leaves this stage.
# No version pin: sid keeps one version per package, so a pin would break every build the
# day sid moves on. Releases pin what shipped by the image digest in action.yml instead.
# (`apt-get download` is not `install`: hadolint's DL3008 does not apply.)
# APT_CHECK_VALID_UNTIL: the test bed's Debian mirror is a frozen snapshot whose sid Release
# file has expired; the bed passes `false`. Runners pass no build args: the check stays on.
ARG APT_CHECK_VALID_UNTIL=true
WORKDIR /tmp/sid
RUN set -eu; \
    mkdir -p lists/partial archives/partial root; chown _apt . archives/partial; \
    echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main' \
      >sources.list; \
    printf '%s\n' 'Dir::Etc::sourcelist "/tmp/sid/sources.list";' \
      'Dir::Etc::sourceparts "/dev/null";' 'Dir::State::Lists "/tmp/sid/lists";' \
      'Dir::Cache::Archives "/tmp/sid/archives";' \
      "Acquire::Check-Valid-Until \"$APT_CHECK_VALID_UNTIL\";" >apt.conf; \
    apt-get -c apt.conf update -q; \
    apt-get -c apt.conf download docker-buildx; \
    dpkg-deb -x docker-buildx_*.deb root; \
    install -D root/usr/libexec/docker/cli-plugins/docker-buildx \
      /usr/libexec/docker/cli-plugins/docker-buildx; \
    /usr/libexec/docker/cli-plugins/docker-buildx version

# Dependencies from the hash-locked requirements.lock (`make lock`), nothing else: --no-deps
# keeps pip from resolving anything the lock left out (cryptography, see the Makefile).
# A venv works on bases whose system Python is externally managed (PEP 668); pip leaves
# the venv once it has installed. The action's own code is copied, not installed (below).
# Bytecode is compiled here, once (unchecked-hash: no mtime checks), not at every start of
# the action: it costs ~2 MB compressed and saves each job the compile of every import.
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --require-hashes --no-deps -r /tmp/requirements.lock \
 && /opt/venv/bin/pip uninstall -y -q pip \
 && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && /opt/venv/bin/python -c "import github, docker, actions_toolkit"
COPY src/gh_docker_publish /opt/gh_docker_publish
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/gh_docker_publish

FROM python:3.13-slim@sha256:7c61056e61ac89e852de05f3dc6fa51a6dd2181797bceed46aa725dd7cb2cd3b
COPY --from=build /usr/libexec/docker/cli-plugins/docker-buildx /usr/libexec/docker/cli-plugins/docker-buildx
COPY --from=build /opt/venv /opt/venv
# entrypoint.py and post.py sit beside the package: Python puts the script's directory
# first on sys.path, so /opt/gh_docker_publish is imported without an install step.
COPY --from=build /opt/gh_docker_publish /opt/gh_docker_publish
COPY entrypoint.py post.py /opt/
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/venv/bin/python", "/opt/entrypoint.py"]
