"""Values that end up public in the image or its manifest (tags, labels, annotations) must
not carry a secret the run holds: a workflow's own GITHUB_TOKEN given as a tag or a label
would otherwise be published without a word (issue 17 item 13).

One check over the *final* values (after tag rules ran), so new sources of published values
only need to be passed in. Before any network call; the message names the input and where
the secret sits, never the secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gh_docker_publish.errors import InputError

#: A secret this short could occur in a value by chance (a build secret "1"): below this
#: length only an exact match counts. GitHub's tokens are 40+ characters.
MIN_CONTAINED_SECRET = 8


def _holds(value: str, secret: str) -> bool:
    folded_value, folded_secret = value.casefold(), secret.casefold()
    if len(secret) < MIN_CONTAINED_SECRET:
        return folded_value == folded_secret
    # Case-folded: a tag or label in upper case is still the token to anyone who reads it.
    return folded_secret in folded_value


def refuse_secrets(published: Mapping[str, Iterable[str]], secrets: Iterable[str]) -> None:
    """Raise InputError when a value of ``published`` (input name -> its final values)
    equals or contains one of ``secrets``.

    Raises:
        InputError: naming the input and the value's position, not the value.
    """
    known = [s for s in secrets if s]
    for input_name, values in published.items():
        for position, value in enumerate(values, start=1):
            if any(_holds(value, secret) for secret in known):
                raise InputError.holds_secret(input_name, position)
