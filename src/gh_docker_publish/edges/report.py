"""What the run did, told three ways: step outputs, the job summary, and the CLI's text.

Rendering is pure (``render_*``); ``write`` hands outputs and summary to ``gha`` once each.
Nothing secret is in ``PublishResult``, so ``metadata`` can be all of it. Links are built
from the result's own fields, never by editing masked text (masking mangles strings that
happen to equal a secret).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gh_docker_publish.core.progress import human_bytes
from gh_docker_publish.edges.gha import Console

OUTPUT_NAMES = (
    "image", "images", "tags", "tag-names", "digest", "imageid", "metadata", "report", "registry",
    "package-url",
    "token-source", "username", "builder", "deleted-versions", "kept-versions",
    "version", "labels", "annotations", "json",
)
# docker/metadata-action exports its outputs as these variables too (unless
# DOCKER_METADATA_SET_OUTPUT_ENV=false), so later steps can read them from the environment.
OUTPUT_ENV = {
    "version": "DOCKER_METADATA_OUTPUT_VERSION",
    "tags": "DOCKER_METADATA_OUTPUT_TAGS",
    "tag-names": "DOCKER_METADATA_OUTPUT_TAG_NAMES",
    "labels": "DOCKER_METADATA_OUTPUT_LABELS",
    "annotations": "DOCKER_METADATA_OUTPUT_ANNOTATIONS",
    "json": "DOCKER_METADATA_OUTPUT_JSON",
}


@dataclass(frozen=True)
class PublishResult:
    """The outcome of one run, as ``publish.run`` returns it. No secrets in here."""

    image: str  # registry/path, no tag (the first image)
    registry: str
    images: tuple[str, ...] = ()  # every image (`images`), the first is `image`
    tags: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    digest: str = ""  # manifest digest of the pushed image ("" when not pushed)
    imageid: str = ""  # local image ID (config digest)
    package_url: str = ""
    token_source: str = ""  # "github-token" | "token" | "registry-auth" | ""
    username: str = ""
    token_reason: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    version: str = ""  # the first tag (metadata-action's version)
    annotations: tuple[str, ...] = ()  # LEVEL:KEY=VALUE, as metadata-action's output
    separators: tuple[str, str, str] = ("\n", "\n", "\n")  # sep-tags, sep-labels, -annotations
    export_env: bool = False  # DOCKER_METADATA_SET_OUTPUT_ENV: also export DOCKER_METADATA_OUTPUT_*
    pushed: bool = False
    push_skipped_reason: str = ""
    builder: str = ""  # "buildkit" | "classic"
    build_metadata: Mapping[str, Any] = field(default_factory=dict)  # buildx --metadata-file
    landed: tuple[str, ...] = ()  # refs the registry accepted
    not_landed: tuple[str, ...] = ()  # refs that failed or were not tried
    ref_digests: Mapping[str, str] = field(default_factory=dict)
    #: Several platforms: each platform's manifest digest in the index (or that landed).
    platforms: Mapping[str, str] = field(default_factory=dict)
    platforms_not_landed: tuple[str, ...] = ()
    bytes_uploaded: int = 0
    seconds: float = 0.0

    def digest_of(self, ref: str) -> str:
        """The digest a ref got, or ``""`` when it did not land."""
        if ref in self.not_landed or not self.pushed:
            return ""
        return self.ref_digests.get(ref, self.digest)

    @property
    def token_label(self) -> str:
        return {"github-token": "GITHUB_TOKEN", "token": "personal access token",
                "registry-auth": "registry-auth"}.get(
            self.token_source, self.token_source
        )

    @property
    def image_names(self) -> tuple[str, ...]:
        return self.images or (self.image,)

    @property
    def pull_ref(self) -> str:
        """What to ``docker pull``: the first ref that landed (or the first ref)."""
        landed = [r for r in self.refs if r not in self.not_landed]
        return (landed or list(self.refs) or [self.image])[0]


def buildx_metadata(result: PublishResult) -> dict[str, Any]:
    """build-push-action's ``metadata`` output: buildx's metadata file, with the keys its
    users read filled in from what we did (the classic builder writes none; our push, not
    buildx's, made the manifest, so ``containerimage.digest`` is the pushed digest)."""
    data = dict(result.build_metadata)
    if result.imageid:
        data["containerimage.config.digest"] = result.imageid
    if result.refs:
        data["image.name"] = ",".join(result.refs)
    if result.digest:
        data["containerimage.digest"] = result.digest
    return data


def run_report(result: PublishResult) -> dict[str, Any]:
    """The whole result as JSON-ready data (the ``report`` output)."""
    data = asdict(result)
    # how outputs are written, not what; buildx's own record is the `metadata` output
    for left_out in ("separators", "export_env", "build_metadata"):
        del data[left_out]
    data["labels"] = dict(result.labels)
    data["ref_digests"] = dict(result.ref_digests)
    data["platforms"] = dict(result.platforms)
    for key in ("tags", "refs", "landed", "not_landed", "annotations", "platforms_not_landed"):
        data[key] = list(data[key])
    return data


def render_outputs(result: PublishResult) -> dict[str, str]:
    """Exactly the outputs action.yml declares; lists are joined by the sep-* inputs."""
    sep_tags, sep_labels, sep_annotations = result.separators
    return {
        "image": result.image,
        "images": "\n".join(result.image_names),
        # metadata-action's names: `tags` are full references, `tag-names` the bare tags.
        "tags": sep_tags.join(result.refs),
        "tag-names": sep_tags.join(result.tags),
        "digest": result.digest,
        "imageid": result.imageid,
        "metadata": json.dumps(buildx_metadata(result), sort_keys=True),
        "report": json.dumps(run_report(result), sort_keys=True),
        "registry": result.registry,
        "package-url": result.package_url,
        "token-source": result.token_source,
        "username": result.username,
        "builder": result.builder,
        # mode cleanup's outputs (cleanup.render_outputs); empty when publishing
        "deleted-versions": "",
        "kept-versions": "",
        "version": result.version,
        "labels": sep_labels.join(f"{key}={value}" for key, value in result.labels.items()),
        "annotations": sep_annotations.join(result.annotations),
        "json": json.dumps(
            {"tags": list(result.refs), "labels": dict(result.labels),
             "annotations": list(result.annotations)}
        ),
    }


#: Markdown that would turn a value into markup: emphasis, code spans, links and images,
#: table cells, strike-through. ``&<>`` become entities, which also stops raw HTML.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()) if text else ""


def _cell(text: str) -> str:
    """A value as literal text in the summary's Markdown, on one line: raw HTML in a label
    (``</details><a href=...>``) is shown, never rendered (issue 17 item 12)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(_one_line(text), quote=False))


def _code(text: str) -> str:
    """A value as a Markdown code span (HTML is not rendered inside one): the fence is one
    backtick longer than the longest run inside, so a backtick in the value cannot end it;
    a ``|`` is escaped, since GFM splits table cells before reading code spans."""
    text = _one_line(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _token_line(result: PublishResult, *, markdown: bool) -> str:
    user, reason = result.username, result.token_reason
    who = f" as {_code(user) if markdown else user}" if user else ""
    why = f": {_cell(reason) if markdown else reason}" if reason else ""
    return f"{result.token_label}{who}{why}"


def render_summary(result: PublishResult) -> str:
    """The job summary: refs and digests, how to pull, which token and why, the package."""
    names = ", ".join(f"`{name}`" for name in result.image_names)
    if result.pushed and not result.not_landed:
        heading = f"### Published {names}"
    elif result.pushed:
        heading = f"### Partly published {names}"
    else:
        heading = f"### Built {names} (not pushed)"
    lines = [heading, ""]
    if not result.pushed and result.push_skipped_reason:
        lines += [f"Not pushed: {_cell(result.push_skipped_reason)}", ""]

    lines += ["| Ref | Digest |", "| --- | --- |"]
    for ref in result.refs:
        digest = result.digest_of(ref)
        shown = f"`{digest}`" if digest else ("not pushed" if ref in result.not_landed
                                             or not result.pushed else "")
        lines.append(f"| `{ref}` | {shown} |")
    lines.append("")

    if result.pushed and result.refs:
        lines += ["Pull it with", "", "```sh", f"docker pull {result.pull_ref}", "```", ""]
    if result.token_source:
        lines += [f"**Token:** {_token_line(result, markdown=True)}", ""]
    if result.package_url:
        lines += [f"**Package:** [{result.image}]({result.package_url})", ""]

    details = []
    if result.builder:
        details.append(f"| Builder | {result.builder} |")
    if result.imageid:
        details.append(f"| Image ID | `{result.imageid}` |")
    for platform, digest in result.platforms.items():
        details.append(f"| `{_cell(platform)}` | `{digest}` |")
    for platform in result.platforms_not_landed:
        details.append(f"| `{_cell(platform)}` | not pushed |")
    if result.bytes_uploaded:
        details.append(f"| Uploaded | {human_bytes(result.bytes_uploaded)} |")
    if result.seconds:
        details.append(f"| Time | {result.seconds:.1f} s |")
    for key, value in result.labels.items():
        details.append(f"| {_code(key)} | {_cell(value)} |")
    if details:
        lines += ["<details><summary>Build details</summary>", "", "| | |", "| --- | --- |",
                  *details, "", "</details>", ""]
    return "\n".join(lines)


def render_terminal(result: PublishResult) -> str:
    """Plain text for the CLI: one headline, one line per ref, token and link."""
    if result.pushed:
        verb = "Published" if not result.not_landed else "Partly published"
    else:
        verb = "Built (not pushed)"
    lines = [f"{verb} {', '.join(result.image_names)}"]
    if not result.pushed and result.push_skipped_reason:
        lines.append(f"  reason: {result.push_skipped_reason}")
    width = max((len(r) for r in result.refs), default=0)
    for ref in result.refs:
        digest = result.digest_of(ref) or ("not pushed" if ref in result.not_landed
                                           or not result.pushed else "")
        lines.append(f"  {ref.ljust(width)}  {digest}".rstrip())
    if result.token_source:
        lines.append(f"token: {_token_line(result, markdown=False)}")
    if result.package_url:
        lines.append(f"package: {result.package_url}")
    if result.pushed and result.refs:
        lines.append(f"pull: docker pull {result.pull_ref}")
    return "\n".join(lines)


def write(result: PublishResult, console: Console) -> None:
    """Set the step outputs and write the job summary, once each."""
    outputs = render_outputs(result)
    console.set_outputs(outputs)
    if result.export_env:
        console.export_variables({env: outputs[name] for name, env in OUTPUT_ENV.items()})
    console.write_summary(render_summary(result))
