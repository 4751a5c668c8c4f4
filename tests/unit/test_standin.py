"""The GitHub stand-in: its grant rules as a table, and its HTTP face on a free port.

The rules are what every integration test trusts to behave like GitHub
(DESIGN.md §2), so they are pinned here without a registry or a daemon.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.testbed.standin import (
    SCOPE_MISMATCH,
    WRITE_DENIED,
    Account,
    Package,
    Registry,
    Repo,
    Signer,
    Standin,
    Token,
    World,
    can_pull,
    can_see_repo,
    grant,
    make_server,
    make_signing_cert,
    package_of,
    parse_scopes,
    push_decision,
)

CREATE = "installation not allowed to Create organization package"
WRITE = "installation not allowed to Write organization package"


def _world() -> World:
    world = World()
    for login, kind, members in [
        ("octo-org", "Organization", {"alice": "admin", "bob": "member"}),
        ("other-org", "Organization", {}),
        ("alice", "User", {}),
        ("bob", "User", {}),
        ("mallory", "User", {}),
    ]:
        world.accounts[login] = Account(login, kind, len(world.accounts) + 1, members)
    for full_name, private in [("octo-org/app", True), ("octo-org/site", False),
                               ("alice/tool", False), ("other-org/svc", False)]:
        world.repos[full_name] = Repo(full_name, 100 + len(world.repos), private=private,
                                      visibility="private" if private else "public")
    for owner, name, repo, visibility, access in [
        ("octo-org", "app/hello", "octo-org/app", "private", {}),
        ("octo-org", "shared", "octo-org/site", "private", {"octo-org/app": "write"}),
        ("octo-org", "peek", "octo-org/site", "private", {"octo-org/app": "read"}),
        ("octo-org", "public-img", "octo-org/site", "public", {}),
        ("octo-org", "loose", None, "private", {}),
        ("other-org", "svc", "other-org/svc", "private", {}),
    ]:
        world.packages[(owner, name)] = Package(owner, name, 500 + len(world.packages),
                                                repository=repo, visibility=visibility,
                                                actions_access=access)
    return world


def ghs(repository: str, packages: str = "write", fork_pr: bool = False) -> Token:
    return Token("t", "github_token", repository=repository, packages=packages, fork_pr=fork_pr)


def pat(owner: str, *scopes: str) -> Token:
    return Token("t", "pat", owner=owner, scopes=frozenset(scopes))


APP = ghs("octo-org/app")

PUSH_CASES = [
    # GITHUB_TOKEN of octo-org/app
    ("own linked package", APP, "octo-org/app/hello", True, "", False),
    ("new package in own namespace", APP, "octo-org/new", True, "", True),
    ("owner case differs", ghs("Octo-Org/App"), "octo-org/app/hello", True, "", False),
    ("new package of another owner", APP, "other-org/new", False, CREATE, False),
    ("existing package of another owner", APP, "other-org/svc", False, WRITE, False),
    ("fork PR is read-only", ghs("octo-org/app", fork_pr=True), "octo-org/app/hello",
     False, WRITE, False),
    ("packages: read cannot create", ghs("octo-org/app", "read"), "octo-org/new",
     False, CREATE, False),
    ("same owner, unlinked package", APP, "octo-org/loose", False, WRITE_DENIED, False),
    ("actions access with write role", APP, "octo-org/shared", True, "", False),
    ("actions access with read role", APP, "octo-org/peek", False, WRITE_DENIED, False),
    ("package linked elsewhere", ghs("octo-org/site"), "octo-org/app/hello",
     False, WRITE_DENIED, False),
    # classic PATs
    ("PAT without write:packages", pat("alice", "read:packages", "repo"), "alice/new",
     False, SCOPE_MISMATCH, False),
    ("PAT, own namespace", pat("alice", "write:packages"), "alice/new", True, "", True),
    ("PAT, org admin", pat("alice", "write:packages"), "octo-org/app/hello", True, "", False),
    ("PAT, org member", pat("bob", "write:packages"), "octo-org/loose", True, "", False),
    ("PAT, outsider", pat("mallory", "write:packages"), "octo-org/app/hello",
     False, WRITE_DENIED, False),
    ("PAT, other org", pat("alice", "write:packages"), "other-org/new",
     False, WRITE_DENIED, False),
]


@pytest.mark.parametrize(("token", "repo", "allowed", "message", "creates"),
                         [c[1:] for c in PUSH_CASES], ids=[c[0] for c in PUSH_CASES])
def test_push_rules(token: Token, repo: str, allowed: bool, message: str, creates: bool) -> None:
    decision = push_decision(_world(), token, *package_of(repo))
    assert (decision.allowed, decision.message, decision.creates) == (allowed, message, creates)


PULL_CASES = [
    ("anonymous, public", None, "octo-org/public-img", True),
    ("anonymous, private", None, "octo-org/app/hello", False),
    ("anonymous, missing", None, "octo-org/nothing", False),
    ("GITHUB_TOKEN, linked", ghs("octo-org/app", "read"), "octo-org/app/hello", True),
    ("GITHUB_TOKEN, read grant", ghs("octo-org/app", "read"), "octo-org/peek", True),
    ("GITHUB_TOKEN, unlinked", APP, "octo-org/loose", False),
    ("GITHUB_TOKEN, packages: none", ghs("octo-org/app", "none"), "octo-org/app/hello", False),
    ("GITHUB_TOKEN, public elsewhere", ghs("alice/tool"), "octo-org/public-img", True),
    ("PAT without read scope", pat("alice", "repo"), "octo-org/app/hello", False),
    ("PAT write implies read", pat("alice", "write:packages"), "octo-org/app/hello", True),
    ("PAT, org member", pat("bob", "read:packages"), "octo-org/loose", True),
    ("PAT, outsider", pat("mallory", "read:packages"), "octo-org/app/hello", False),
]


@pytest.mark.parametrize(("token", "repo", "allowed"),
                         [c[1:] for c in PULL_CASES], ids=[c[0] for c in PULL_CASES])
def test_pull_rules(token: Token | None, repo: str, allowed: bool) -> None:
    assert can_pull(_world(), token, *package_of(repo)) is allowed


@pytest.mark.parametrize(("token", "visible"), [
    (None, False),
    (ghs("octo-org/app"), True),
    (ghs("octo-org/site"), False),
    (pat("alice", "repo"), True),
    (pat("alice", "write:packages"), False),
    (pat("mallory", "repo"), False),
])
def test_private_repo_visibility(token: Token | None, visible: bool) -> None:
    world = _world()
    assert can_see_repo(world, token, world.repos["octo-org/app"]) is visible
    assert can_see_repo(world, token, world.repos["octo-org/site"])


def test_names_map_to_packages() -> None:
    assert package_of("octo-org/app/hello") == ("octo-org", "app/hello")
    assert package_of("Alice/Tool") == ("alice", "tool")


def test_scopes_parse_repeated_and_space_separated() -> None:
    assert parse_scopes(["repository:a/b:pull,push repository:c/d:pull", "registry:catalog:*"]) \
        == [("a/b", ["pull", "push"]), ("c/d", ["pull"])]


def test_grant_denies_push_but_only_drops_pull() -> None:
    world = _world()
    denied = grant(world, APP, ["repository:other-org/svc:pull,push"])
    assert (denied.access, denied.denied) == ([], WRITE)
    dropped = grant(world, APP, ["repository:octo-org/loose:pull",
                                 "repository:octo-org/public-img:pull"])
    assert dropped.denied == ""
    assert dropped.access == [
        {"type": "repository", "name": "octo-org/public-img", "actions": ["pull"]}]
    created = grant(world, APP, ["repository:octo-org/new:pull,push"])
    assert created.creates == ("octo-org/new",)
    assert grant(world, None, ["repository:octo-org/new:pull,push"]).access == []


# ---------------------------------------------------------------- over HTTP


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_signing_cert(key, cert)
    signer = Signer(str(key), str(cert), "github-standin", "testbed-registry")
    # No registry: these checks never reach it.
    server = make_server("127.0.0.1", 0,
                         Standin(signer, Registry("http://127.0.0.1:1", signer),
                                 "https://github.com"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def _post(base: str, what: str, body: dict[str, object]) -> dict[str, object]:
    resp = requests.post(f"{base}/_testbed/{what}", json=body, timeout=5)
    resp.raise_for_status()
    result: dict[str, object] = resp.json()
    return result


def test_user_endpoint_for_both_token_kinds(standin: tuple[str, Path]) -> None:
    base, _ = standin
    ghp = _post(base, "tokens", {"kind": "pat", "owner": "alice",
                                 "scopes": ["write:packages", "read:packages"]})["token"]
    ghs_ = _post(base, "tokens", {"kind": "github_token", "repository": "alice/tool"})["token"]
    assert str(ghp).startswith("ghp_") and str(ghs_).startswith("ghs_")

    resp = requests.get(f"{base}/user", headers={"Authorization": f"token {ghp}"}, timeout=5)
    assert resp.status_code == 200
    assert (resp.json()["login"], resp.json()["type"]) == ("alice", "User")
    assert resp.headers["X-OAuth-Scopes"] == "read:packages, write:packages"

    resp = requests.get(f"{base}/api/v3/user", headers={"Authorization": f"Bearer {ghs_}"},
                        timeout=5)
    assert resp.status_code == 403
    assert resp.json()["message"] == "Resource not accessible by integration"

    resp = requests.get(f"{base}/user", headers={"Authorization": "token ghp_nope"}, timeout=5)
    assert (resp.status_code, resp.json()["message"]) == (401, "Bad credentials")


def test_token_endpoint_signs_what_distribution_verifies(standin: tuple[str, Path]) -> None:
    base, cert_path = standin
    ghp = _post(base, "tokens", {"kind": "pat", "owner": "alice",
                                 "scopes": ["write:packages"]})["token"]
    resp = requests.get(f"{base}/token", auth=("alice", str(ghp)), timeout=5, params={
        "service": "testbed-registry", "scope": "repository:alice/img:pull,push"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    header = jwt.get_unverified_header(body["token"])
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    assert (header["alg"], header["x5c"]) == ("RS256", [der])
    claims = jwt.decode(body["token"], cert.public_key(), algorithms=["RS256"],
                        audience="testbed-registry", issuer="github-standin")
    assert claims["access"] == [{"type": "repository", "name": "alice/img",
                                 "actions": ["pull", "push"]}]
    assert claims["sub"] and claims["sub"] != ghp  # never the token value


def test_token_endpoint_refusals(standin: tuple[str, Path]) -> None:
    base, _ = standin
    _post(base, "users", {"login": "octo-org", "type": "Organization"})
    ghs_ = _post(base, "tokens", {"kind": "github_token", "repository": "alice/tool",
                                  "packages": "write"})["token"]
    resp = requests.get(f"{base}/token", auth=("x", str(ghs_)), timeout=5,
                        params={"scope": "repository:octo-org/img:pull,push"})
    assert resp.status_code == 403
    assert resp.json() == {"errors": [{"code": "DENIED", "message": CREATE}]}

    resp = requests.get(f"{base}/token", auth=("x", "ghp_wrong"), timeout=5)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"

    anonymous = requests.get(f"{base}/token", timeout=5,
                             params={"scope": "repository:octo-org/img:pull"})
    claims = jwt.decode(anonymous.json()["token"], options={"verify_signature": False})
    assert claims["access"] == []


def test_private_repo_is_not_found_without_access(standin: tuple[str, Path]) -> None:
    base, _ = standin
    _post(base, "repos", {"full_name": "octo-org/app", "private": True, "license_spdx": "MIT"})
    assert requests.get(f"{base}/repos/octo-org/app", timeout=5).status_code == 404
    ghs_ = _post(base, "tokens", {"kind": "github_token", "repository": "octo-org/app"})["token"]
    resp = requests.get(f"{base}/repos/octo-org/app",
                        headers={"Authorization": f"token {ghs_}"}, timeout=5)
    assert resp.status_code == 200
    assert (resp.json()["visibility"], resp.json()["license"]["spdx_id"]) == ("private", "MIT")
