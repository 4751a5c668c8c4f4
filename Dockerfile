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
# The standard library's modules the action imports at start, for the runtime stage to
# compile: python:3.13-slim ships its stdlib without bytecode (it deletes every *.pyc), and
# with PYTHONDONTWRITEBYTECODE every job would compile them again before its first line.
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/gh_docker_publish \
 && PYTHONPATH=/opt /opt/venv/bin/python -c "import sys, gh_docker_publish.cli, gh_docker_publish.flows.post_step; lib = sys.base_prefix + '/lib/'; print('\n'.join(sorted({m.__file__ for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').startswith(lib) and m.__file__.endswith('.py')})))" >/opt/stdlib-imports.txt

# The runtime: the same base without what the action never runs, flattened into one layer,
# because what each job waits for is the pull (issue 15, B0: the base was 46 of 75 MB
# compressed). Gone: the package tools (apt, debconf, perl; the action installs nothing;
# /var/lib/dpkg stays so that image scanners still see the packages), glibc's iconv modules
# (Python's codecs are its own), PAM, documentation but each package's copyright, and the
# Python parts nothing imports here (ensurepip and its wheels, tests, pydoc topics, IDLE,
# tkinter, dbm and sqlite3). The libraries the interpreter and the locked wheels link
# (`ldd`: libc, libm, libz, libssl/libcrypto, libffi, libexpat, liblzma, libbz2, libzstd,
# libuuid, ncurses) stay; the stage's import check and the e2e tests, which run this image,
# prove the rest. Then the stdlib modules the action imports (the list from the build stage)
# get unchecked-hash bytecode, forced (-f) so that a base with timestamp bytecode ends the
# same as one with none; the e2e test of the image checks it.
FROM python:3.13-slim@sha256:7c61056e61ac89e852de05f3dc6fa51a6dd2181797bceed46aa725dd7cb2cd3b AS runtime
COPY --from=build /opt/stdlib-imports.txt /tmp/stdlib-imports.txt
RUN set -eu; \
    find /usr/share/doc -type f ! -name copyright -delete; \
    rm -rf /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian \
      /usr/bin/apt* /usr/lib/apt /usr/lib/*-linux-gnu/libapt-* /var/lib/apt /var/cache/apt \
      /etc/apt /usr/bin/sqv /usr/bin/debconf* /usr/share/debconf /var/cache/debconf \
      /usr/bin/perl* /usr/lib/*-linux-gnu/perl-base /usr/share/perl5 /usr/lib/*-linux-gnu/perl \
      /usr/lib/*-linux-gnu/gconv /usr/lib/*-linux-gnu/security /usr/lib/*-linux-gnu/libdb-5* \
      /usr/lib/*-linux-gnu/libsqlite3.so* /usr/share/python-wheels; \
    for lib in /usr/lib/python3.* /usr/local/lib/python3.*; do \
      [ -d "$lib" ] || continue; \
      rm -rf "$lib/ensurepip" "$lib/test" "$lib/idlelib" "$lib/tkinter" "$lib/turtledemo" \
        "$lib/pydoc_data" "$lib/sqlite3" "$lib/dbm" "$lib"/lib-dynload/_sqlite3.* \
        "$lib"/lib-dynload/_dbm.* "$lib"/lib-dynload/_gdbm.* "$lib"/lib-dynload/_tkinter.*; \
    done; \
    python3 -c "import ssl, ctypes, lzma, bz2, json, uuid, hashlib, zlib"; \
    python3 -m compileall -q -f --invalidation-mode unchecked-hash -i /tmp/stdlib-imports.txt; \
    rm /tmp/stdlib-imports.txt

FROM scratch
# DL3067 (copying a whole filesystem from a stage) is the point here: one flattened base.
# hadolint ignore=DL3067
COPY --from=runtime / /
COPY --from=build /usr/libexec/docker/cli-plugins/docker-buildx /usr/libexec/docker/cli-plugins/docker-buildx
COPY --from=build /opt/venv /opt/venv
# entrypoint.py and post.py sit beside the package: Python puts the script's directory
# first on sys.path, so /opt/gh_docker_publish is imported without an install step.
COPY --from=build /opt/gh_docker_publish /opt/gh_docker_publish
COPY entrypoint.py post.py /opt/
# `FROM scratch` keeps none of the base's ENV: the two it sets that a process here needs.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/venv/bin/python", "/opt/entrypoint.py"]
