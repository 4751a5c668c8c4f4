"""One error type the user reads: what went wrong, what to change, where it is documented.

Library code raises these; only ``entrypoint.py`` and ``cli.py`` turn them into an
exit code. Messages are one line; ``hint`` says what to change (the input, the
permission, the settings page); ``docs_url`` points at GitHub's page for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class PublishError(Exception):
    """A failure the user can act on."""

    title = "gh-docker-publish"

    def __init__(self, message: str, *, hint: str = "", docs_url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.docs_url = docs_url

    def __str__(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(self.hint)
        if self.docs_url:
            parts.append(f"See {self.docs_url}")
        return " ".join(parts)


class InputError(PublishError):
    """A bad input, found before any network call. Names the input."""

    title = "Invalid input"

    def __init__(
        self, input_name: str, message: str, *, hint: str = "", docs_url: str = "",
        what: str = "Input",
    ) -> None:
        super().__init__(f"{what} '{input_name}': {message}", hint=hint, docs_url=docs_url)
        self.input_name = input_name

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


class CredentialError(PublishError):
    """The credential at hand cannot do what the run needs (missing PAT, scope, permission)."""

    title = "Credentials"


class RegistryError(PublishError):
    """The registry refused or failed a login, pull or push."""

    title = "Registry"


class BuildError(PublishError):
    """The image build failed; ``log_tail`` holds the last lines of the build output."""

    title = "Build failed"

    def __init__(self, message: str, *, log_tail: Sequence[str] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = list(log_tail)


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
    ) -> None:
        super().__init__(message, hint=hint, docs_url=docs_url)
        self.landed = list(landed)
        self.not_landed = list(not_landed)
        self.digests = dict(digests or {})
        self.registry_message = registry_message

    def __str__(self) -> str:
        text = super().__str__()
        landed = ", ".join(self.landed) or "none"
        missing = ", ".join(self.not_landed) or "none"
        return f"{text} Landed: {landed}. Not landed: {missing}."


class GitHubApiError(PublishError):
    """GitHub's REST API refused or failed a call."""

    title = "GitHub API"


class DaemonError(PublishError):
    """The Docker daemon is unreachable or refused a call."""

    title = "Docker daemon"
