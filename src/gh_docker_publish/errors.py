"""One error type the user reads: what went wrong, what to change, where it is documented.

Library code raises these; only ``entrypoint.py`` and ``cli.py`` turn them into an
exit code. Messages are one line; ``hint`` says what to change (the input, the
permission, the settings page); ``docs_url`` points at GitHub's page for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

#: How the surface the user works in names an input: None for the action's own words
#: (``'repository' input``), or a function giving the CLI's (``--repository``; None for a
#: name it does not know, which stays as written).
InputNamer = Callable[[str], "str | None"]
#: "the 'token' input", "the `token` input", "'owner' and 'image' inputs", "input 'file'".
_INPUT_PHRASE = re.compile(
    r"(?:the )?[`'](?P<a>[a-z][a-z-]*)[`'](?: and [`'](?P<b>[a-z][a-z-]*)[`'])? inputs?"
    r"|input [`'](?P<c>[a-z][a-z-]*)[`']"
)


def reword_inputs(text: str, namer: InputNamer | None) -> str:
    """``text`` with each phrase naming an input reworded by ``namer`` (the CLI's flags)."""
    if namer is None or not text:
        return text

    def one(match: re.Match[str]) -> str:
        names = [n for n in match.group("a", "b", "c") if n]
        worded = [namer(n) for n in names]
        if any(w is None for w in worded):
            return match.group(0)
        return " and ".join(f"`{w}`" for w in worded)

    return _INPUT_PHRASE.sub(one, text)

# The name our messages suggest for the PAT secret (a name, not a secret).
PAT_SECRET_NAME = "PACKAGES_TOKEN"  # noqa: S105
PERMISSIONS_DOCS = (
    "https://docs.github.com/en/packages/learn-github-packages/"
    "about-permissions-for-github-packages"
)
CLASSIC_PAT_DOCS = PERMISSIONS_DOCS + "#about-scopes-and-permissions-for-package-registries"
PAT_DOCS = (
    "https://docs.github.com/en/packages/working-with-a-github-packages-registry/"
    "working-with-the-container-registry#authenticating-with-a-personal-access-token-classic"
)
PUBLISH_WITH_ACTIONS_DOCS = (
    "https://docs.github.com/en/packages/managing-github-packages-using-github-actions-workflows/"
    "publishing-and-installing-a-package-with-github-actions"
)
PACKAGES_DOCS = "https://docs.github.com/rest/packages/packages"
#: The one migration guide: the GHES Docker registry is what our advice concerns
#: (github.com's docker.pkg.github.com was migrated by GitHub itself).
MIGRATION_DOCS = (
    "https://docs.github.com/en/enterprise-server@latest/packages/"
    "working-with-a-github-packages-registry/"
    "migrating-to-the-container-registry-from-the-docker-registry"
)
PASS_PAT = f"'token: ${{{{ secrets.{PAT_SECRET_NAME} }}}}'"


class PublishError(Exception):
    """A failure the user can act on. Subclasses that say more extend ``render``, which
    ``__str__`` and both entry points use."""

    title = "gh-docker-publish"

    def __init__(self, message: str, *, hint: str = "", docs_url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.docs_url = docs_url

    def __str__(self) -> str:
        return self.render(None)

    def render(self, namer: InputNamer | None) -> str:
        """Message, hint and link, with inputs named the way the user sets them: the
        action's inputs (``namer`` None) or the CLI's flags (issue 15)."""
        parts = [self._message(namer)]
        if self.hint:
            parts.append(reword_inputs(self.hint, namer))
        if self.docs_url:
            parts.append(f"See {self.docs_url}")
        return " ".join(parts)

    def _message(self, namer: InputNamer | None) -> str:
        return reword_inputs(self.message, namer)


class InputError(PublishError):
    """A bad input, found before any network call. Names the input."""

    title = "Invalid input"

    def __init__(
        self, input_name: str, message: str, *, hint: str = "", docs_url: str = "",
        what: str = "Input",
    ) -> None:
        super().__init__(f"{what} '{input_name}': {message}", hint=hint, docs_url=docs_url)
        self.input_name = input_name
        self.detail = message

    def _message(self, namer: InputNamer | None) -> str:
        flag = namer(self.input_name) if namer else None
        if flag is None:
            return super()._message(namer)
        return f"{flag}: {reword_inputs(self.detail, namer)}"

    @classmethod
    def in_line(cls, input_name: str, line: str, problem: str, fix: str) -> InputError:
        """A problem in one line of a list input (``tags``, ``flavor``, ``labels``...),
        quoting the line back so the user finds it."""
        return cls(input_name, f"{problem} in line {line!r}.", hint=fix)

    @classmethod
    def bad_item(cls, input_name: str, item: str, problem: str, example: str) -> InputError:
        """One item of a list input that does not have the form the input takes."""
        return cls(input_name, f"'{item}' {problem}.", hint=f"For example {example}.")

    @classmethod
    def needs_buildkit(cls, used: Sequence[str]) -> InputError:
        """BuildKit-only inputs with ``builder: classic`` (build_inputs/buildx_flags
        ``classic_conflicts``): named before any network call."""
        return cls(
            used[0],
            "needs BuildKit, but builder is classic (the classic builder has no "
            f"{', '.join(used)}).",
            hint="Use builder: auto or buildkit, or drop the input.",
        )

    @classmethod
    def not_loaded(cls, input_name: str, push: str) -> InputError:
        """``outputs`` / ``load: false`` while pushing: we push from the Docker daemon."""
        return cls(
            input_name,
            f"sends the image elsewhere than the Docker daemon, which we push from (push is "
            f"{push}).",
            hint=f"Set push: false to only build, or drop '{input_name}': we push to the "
            "registry ourselves, no output or load is needed.",
        )

    @classmethod
    def bad_variable(cls, variable: str, value: str, expected: str) -> InputError:
        """A ``DOCKER_METADATA_*`` environment variable (set with ``env:`` on the step)
        whose value is not what docker/metadata-action documents."""
        return cls(
            variable, f"{value!r} is not {expected}.",
            hint=f"Fix or remove {variable} in the step's env:.", what="Environment variable",
        )

    @classmethod
    def not_one_of(
        cls, input_name: str, value: str, choices: Sequence[str], *, hint: str
    ) -> InputError:
        """The error for a value outside a fixed set of choices (auth, mode, builder, ...)."""
        return cls(input_name, f"'{value}' is not one of {', '.join(choices)}.", hint=hint)

    @classmethod
    def too_many_tags(cls, count: int, limit: int) -> InputError:
        """More tags than a run publishes (core/limits.py says why this limit)."""
        return cls(
            "tags",
            f"{count} tags; at most {limit} are published in one run (each is a push, and all "
            "of them go into the outputs, which GitHub caps at 1 MB per job).",
            hint="Check the tag rules for one that fires too often, or split the tags over "
            "several steps.",
        )

    @classmethod
    def holds_secret(cls, input_name: str, position: int) -> InputError:
        """A published value (tag, label, annotation) that holds a token or secret of the
        run (issue 17 item 13); names where it is, never the secret."""
        return cls(
            input_name,
            f"value {position} contains a secret this run holds (a token or a build "
            "secret); it would be published with the image for anyone who can pull it.",
            hint=f"Remove the secret from '{input_name}' (check the expressions that build "
            "it, e.g. ${{ secrets.* }} or ${{ github.token }}).",
        )

    @classmethod
    def unusable_token(cls, input_name: str, flaw: str) -> InputError:
        """A token no HTTP header can carry (issue 17 item 4); ``flaw`` names the character
        and where it is, never the token."""
        return cls(
            input_name,
            f"the token {flaw}; tokens are printable ASCII without spaces.",
            hint=f"Copy the token again and set '{input_name}' (or its secret) to exactly "
            "the token: no spaces, line breaks or invisible characters around or inside it.",
        )


    @classmethod
    def digest_push_on_docker_registry(
        cls, input_name: str, registry: str, *, why: str = "", hint: str = "", docs_url: str
    ) -> InputError:
        """An input that makes something push by digest (several platforms, an attestation,
        a builder elsewhere, ``push-by-digest``, ``mode: merge``) aimed at GitHub's Docker
        registry (GHES), which takes IMAGE:VERSION only: "pushing by digest is not
        supported" (its docs)."""
        return cls(
            input_name,
            f"{why}{registry} is GitHub's Docker registry, which takes IMAGE:VERSION and "
            "cannot be pushed by digest (IMAGE@SHA); nothing was built.",
            hint=hint
            or "Publish to the Container registry (containers.HOSTNAME, or ghcr.io), or "
            "build every platform in one job with 'platforms'.",
            docs_url=docs_url,
        )


class CredentialError(PublishError):
    """The credential at hand cannot do what the run needs (missing PAT, scope, permission)."""

    title = "Credentials"

    @classmethod
    def missing_pat(cls, subject: str, why: str, scopes: str) -> CredentialError:
        """``subject`` (publishing X, reading packages of Y) needs a PAT the run lacks."""
        return cls(
            f"{subject} needs a personal access token: {why}.",
            hint=f"Create a personal access token (classic) with {scopes}, add it as the "
            f"secret {PAT_SECRET_NAME} and pass {PASS_PAT}.",
            docs_url=PAT_DOCS,
        )

    @classmethod
    def no_github_token(cls, message: str) -> CredentialError:
        """GITHUB_TOKEN is needed (or the only choice) and was not given."""
        return cls(
            message,
            hint="In a workflow keep the default 'github-token: ${{ github.token }}' and grant "
            "'permissions: packages: write'; outside Actions set GITHUB_TOKEN.",
            docs_url=PUBLISH_WITH_ACTIONS_DOCS,
        )

    #: What cleanup needs: its hint wherever a cleanup token falls short.
    CLEANUP_PAT_HINT = (
        "Pass a personal access token (classic) with read:packages and delete:packages in "
        f"'token' (e.g. {PASS_PAT})."
    )

    @classmethod
    def cleanup_needs_pat(cls, github_token_forced: bool) -> CredentialError:
        """Cleanup's Packages REST API calls take no GITHUB_TOKEN."""
        return cls(
            "mode cleanup lists and deletes package versions through GitHub's Packages REST "
            "API, which does not accept GITHUB_TOKEN"
            + (" ('auth' is github-token)." if github_token_forced
               else "; the 'token' input is empty."),
            hint=cls.CLEANUP_PAT_HINT,
            docs_url=CLASSIC_PAT_DOCS,
        )


class RegistryError(PublishError):
    """The registry refused or failed a login, pull or push."""

    title = "Registry"


class BuildError(PublishError):
    """The image build failed; ``log_tail`` holds the last lines of the build output."""

    title = "Build failed"

    def __init__(self, message: str, *, log_tail: Sequence[str] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = list(log_tail)

    @classmethod
    def needs_buildkit(cls, message: str, instead: str) -> BuildError:
        """The classic builder cannot do what was asked; ``instead``: the other way out."""
        return cls(
            message,
            hint="Use the BuildKit builder (install docker buildx; builder: auto or "
            f"buildkit), or {instead}.",
        )

    @classmethod
    def buildx_unusable(cls, message: str) -> BuildError:
        """buildx is missing or cannot run."""
        return cls(
            message,
            hint="Install the docker buildx plugin (docker-buildx), or use builder: classic.",
        )

    @classmethod
    def builder_unreachable(cls, where: str, reason: str, *, hint: str) -> BuildError:
        """The ``builder`` input names BuildKit elsewhere that does not answer as one."""
        return cls(f"Input 'builder': {where} {reason}; nothing was built.", hint=hint)

    @classmethod
    def dockerfile_link_outside(cls, path: object, target: str) -> BuildError:
        """A symlinked Dockerfile leading out of its directory: read by neither docker CLI
        (BuildKit resolves it inside that directory), nor by us (issue 17)."""
        how = "an absolute path" if target.startswith("/") else "a path above its directory"
        return cls(
            f"The Dockerfile {path} is a symbolic link to {how}; BuildKit reads a "
            "symlinked Dockerfile only inside its own directory, so it is not read.",
            hint="Point 'file' at the Dockerfile itself, or make the link relative to a "
            "file next to it or below it.",
        )

    @classmethod
    def bad_ignore_file(cls, path: object, reason: str) -> BuildError:
        """An ignore file BuildKit refuses; the build would fail on it there too."""
        return cls(
            f"The ignore file {path} cannot be used: {reason}.",
            hint="Fix that line (patterns: docs.docker.com/build/concepts/context/"
            "#dockerignore-files).",
        )

    @classmethod
    def classic_context_mismatch(cls, dockerfile: str, reason: str) -> BuildError:
        """The classic daemon deletes the Dockerfile and .dockerignore by the tar's
        .dockerignore; when no content gets that right, refuse rather than differ."""
        return cls(
            "The classic builder cannot send this context as BuildKit would: the daemon "
            f"keeps or deletes the Dockerfile ({dockerfile}) and .dockerignore by the "
            f".dockerignore it receives, and {reason}.",
            hint="Use the BuildKit builder (builder: buildkit or auto with docker buildx).",
        )


class PushError(RegistryError):
    """A push failed part-way: says which refs landed (with digests) and which did not,
    so the outputs can still be written for what landed."""

    title = "Push failed"

    def __init__(
        self,
        message: str,
        *,
        landed: Sequence[str] = (),
        not_landed: Sequence[str] = (),
        digests: Mapping[str, str] | None = None,
        registry_message: str = "",
        hint: str = "",
        docs_url: str = "",
        platforms_landed: Mapping[str, str] | None = None,
        platforms_not_landed: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint, docs_url=docs_url)
        self.landed = list(landed)
        self.not_landed = list(not_landed)
        self.digests = dict(digests or {})
        self.registry_message = registry_message
        #: A multi-platform push: platform -> manifest digest that reached the registry.
        self.platforms_landed = dict(platforms_landed or {})
        self.platforms_not_landed = list(platforms_not_landed)

    def render(self, namer: InputNamer | None) -> str:
        text = super().render(namer)
        landed = ", ".join(self.landed) or "none"
        missing = ", ".join(self.not_landed) or "none"
        return f"{text} Landed: {landed}. Not landed: {missing}."


class GitHubApiError(PublishError):
    """GitHub's REST API refused or failed a call."""

    title = "GitHub API"

    @classmethod
    def package_missing(cls, owner: str, name: str) -> GitHubApiError:
        """No package OWNER/NAME that the token can see (the API answers 404 for both)."""
        return cls(
            f"The package {owner}/{name} does not exist, or the token's user cannot see it.",
            hint="Check 'image' and 'owner' (the package name is the image path after OWNER), "
            "that the token's user has access to the package and the token read:packages.",
            docs_url=PACKAGES_DOCS,
        )


class DaemonError(PublishError):
    """The Docker daemon is unreachable or refused a call."""

    title = "Docker daemon"
