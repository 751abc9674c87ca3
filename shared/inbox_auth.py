"""Inbox authentication: checking what a sender presents, and storing credentials.

A project's inbox is open until it has an active inbox credential. Then a
request must carry one that verifies: an API key (``x-api-key``), HTTP Basic,
or a Standard Webhooks signature (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``). Verification is pure and works on what the catalog
holds in memory; the functions at the end write credentials and wake the
gateways so that they reload.

API keys and Basic passwords are kept as digests. Signing secrets must be
read back to check signatures, so they are sealed by Vault's transit engine,
bound to their credential's id, and only the ciphertext is stored; gateways
open each one once and keep the key in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from psycopg import Connection

from shared.db.connection import DEPLOY_CHANNEL
from shared.errors import PlatformError
from shared.logging import get_logger
from shared.vault import VaultUnavailableError

log = get_logger(__name__)

HMAC_SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
# Longer ids are refused rather than stored for the replay check.
MAX_WEBHOOK_ID_CHARS = 256
_SECRET_BYTES = 32


class InboxCredentialKind(StrEnum):
    """How a sender proves it may post to an inbox."""

    API_KEY = "api_key"
    BASIC = "basic"
    HMAC = "hmac"


class InboxCredentialError(PlatformError):
    """An inbox credential that cannot be created as asked, or does not parse."""


@dataclass(frozen=True)
class BasicLogin:
    """A Basic user name and password, each kept as its SHA-256 digest."""

    username_hash: bytes
    password_hash: bytes


@dataclass(frozen=True)
class InboxAuth:
    """A project's active inbox credentials, in the form verification needs.

    ``required`` is true whenever the project has an active credential, even
    one that could not be loaded, so a broken secret closes the inbox rather
    than opening it. ``unopened`` counts the signing secrets whose key is not
    at hand (Vault did not answer, or refused): a signature none of the other
    keys verifies may be one of theirs, so it is not called wrong.
    """

    required: bool = False
    api_key_hashes: tuple[bytes, ...] = ()
    basic_logins: tuple[BasicLogin, ...] = ()
    hmac_keys: tuple[bytes, ...] = ()
    unopened: int = 0


class Verdict(StrEnum):
    """What verification concluded about one request."""

    ACCEPTED = "accepted"
    MISSING = "missing"
    REFUSED = "refused"
    # A signature that may be good, under a secret that cannot be opened now.
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class SignedRequest:
    """A request its signature vouched for: its ``webhook_id``, which the
    caller must refuse to see again until ``replayable_until_s`` (Unix time),
    after which the timestamp check refuses a replay anyway."""

    webhook_id: str
    replayable_until_s: float


@dataclass(frozen=True)
class Verification:
    """The verdict, and the signature that earned it if no key or login did."""

    verdict: Verdict
    signed: SignedRequest | None = None


ACCEPTED = Verification(Verdict.ACCEPTED)
MISSING = Verification(Verdict.MISSING)
REFUSED = Verification(Verdict.REFUSED)
UNCHECKED = Verification(Verdict.UNCHECKED)


def sha256(value: bytes) -> bytes:
    """The SHA-256 digest that stands in for a generated key or password."""
    return hashlib.sha256(value).digest()


def parse_hmac_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret.

    Raises:
        InboxCredentialError: the text is not a prefixed, base64-encoded key.
    """
    if not secret.startswith(HMAC_SECRET_PREFIX):
        raise InboxCredentialError(f"expected a secret starting {HMAC_SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(HMAC_SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise InboxCredentialError("the secret after whsec_ is not base64") from exc
    if not key:
        raise InboxCredentialError("the secret holds no key")
    return key


def sign(key: bytes, webhook_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message, as a sender computes it."""
    mac = hmac.new(key, f"{webhook_id}.{timestamp_s}.".encode(), hashlib.sha256)
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_request(
    auth: InboxAuth,
    headers: Mapping[str, str],
    body: bytes,
    now_s: float,
    tolerance_s: float,
) -> Verification:
    """Decide whether a request's credentials let it into the inbox.

    Only the methods the project has credentials of count as presented. Every
    presented method is checked against every active credential of its kind,
    in constant time, so the answer's timing does not tell which key failed.

    Args:
        auth: the project's active credentials.
        headers: the request headers, with lower-case names.
        body: the raw body, as signed.
        now_s: the current Unix time.
        tolerance_s: how far a signature's timestamp may be from ``now_s``.
    """
    if not auth.required:
        return ACCEPTED
    presented = False
    accepted = False
    api_key = headers.get("x-api-key")
    if auth.api_key_hashes and api_key is not None:
        presented = True
        accepted |= _matches_any(sha256(api_key.encode()), auth.api_key_hashes)
    login = _basic_login(headers.get("authorization"))
    if auth.basic_logins and login is not None:
        presented = True
        accepted |= _matches_login(login, auth.basic_logins)
    if accepted:
        return ACCEPTED
    if (auth.hmac_keys or auth.unopened) and "webhook-signature" in headers:
        verification = _verify_signature(
            auth.hmac_keys, headers, body, now_s, tolerance_s
        )
        if verification.verdict is Verdict.REFUSED and auth.unopened:
            return UNCHECKED
        return verification
    return REFUSED if presented else MISSING


def _matches_any(digest: bytes, known: Iterable[bytes]) -> bool:
    # No early exit: every key is compared whichever one matches.
    found = False
    for candidate in known:
        found |= hmac.compare_digest(digest, candidate)
    return found


def _basic_login(authorization: str | None) -> BasicLogin | None:
    """The hashed user name and password of a Basic header; None for another
    scheme, an empty login for a malformed one (presented, and wrong)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except binascii.Error:
        return BasicLogin(b"", b"")
    username, _, password = decoded.partition(b":")
    return BasicLogin(sha256(username), sha256(password))


def _matches_login(login: BasicLogin, known: Iterable[BasicLogin]) -> bool:
    found = False
    for candidate in known:
        same_user = hmac.compare_digest(login.username_hash, candidate.username_hash)
        same_password = hmac.compare_digest(
            login.password_hash, candidate.password_hash
        )
        found |= same_user & same_password
    return found


def _verify_signature(
    keys: Iterable[bytes],
    headers: Mapping[str, str],
    body: bytes,
    now_s: float,
    tolerance_s: float,
) -> Verification:
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not 0 < len(webhook_id) <= MAX_WEBHOOK_ID_CHARS or not timestamp.isdigit():
        return REFUSED
    timestamp_s = int(timestamp)
    if abs(now_s - timestamp_s) > tolerance_s:
        return REFUSED
    offered = _offered_signatures(headers["webhook-signature"])
    found = False
    for key in keys:
        expected = sign(key, webhook_id, timestamp_s, body)
        for signature in offered:
            found |= hmac.compare_digest(expected.encode(), signature.encode())
    if not found:
        return REFUSED
    signed = SignedRequest(webhook_id, timestamp_s + tolerance_s)
    return Verification(Verdict.ACCEPTED, signed)


def _offered_signatures(header: str) -> list[str]:
    # Other versions (such as asymmetric ``v1a``) are not ours to check.
    return [entry for entry in header.split() if entry.startswith("v1,")]


class Sealer(Protocol):
    """Encrypts secrets bound to a context, and decrypts them again (Vault)."""

    def seal(self, context: bytes, plaintext: bytes) -> str: ...

    def unseal(self, context: bytes, ciphertext: str) -> bytes: ...


def signing_context(credential_id: UUID) -> bytes:
    """What a signing secret is sealed to: its ciphertext, copied to another
    credential's row, does not open."""
    return f"inbox-credential:{credential_id}".encode()


def is_plain(stored: str) -> bool:
    """Whether a stored signing secret predates sealing: ``whsec_`` text."""
    return stored.startswith(HMAC_SECRET_PREFIX)


def open_signing_key(credential_id: UUID, stored: str, sealer: Sealer | None) -> bytes:
    """The HMAC key of a stored signing secret.

    A secret stored before sealing existed is still read as it is.

    Raises:
        InboxCredentialError: the secret does not parse, or is sealed and no
            ``sealer`` was given.
        SealRefusedError: Vault refused to open it.
        VaultUnavailableError: Vault did not answer.
    """
    if is_plain(stored):
        return parse_hmac_secret(stored)
    if sealer is None:
        raise InboxCredentialError("the secret is sealed and no Vault is configured")
    opened = sealer.unseal(signing_context(credential_id), stored)
    return parse_hmac_secret(opened.decode("utf-8", errors="replace"))


def to_inbox_auth(
    rows: Iterable[Mapping[str, Any]],
    key_of: Callable[[Mapping[str, Any]], bytes | None],
) -> InboxAuth:
    """One project's active ``inbox_credentials`` rows as an ``InboxAuth``.

    ``key_of`` gives a signing secret's key, or None for one that could not
    be opened, which is counted as unopened.
    """
    required = False
    api_keys: list[bytes] = []
    logins: list[BasicLogin] = []
    hmac_keys: list[bytes] = []
    unopened = 0
    for row in rows:
        required = True
        kind = InboxCredentialKind(row["kind"])
        if kind is InboxCredentialKind.API_KEY:
            api_keys.append(bytes(row["secret_hash"]))
        elif kind is InboxCredentialKind.BASIC:
            username_hash = sha256(row["username"].encode())
            logins.append(BasicLogin(username_hash, bytes(row["secret_hash"])))
        else:
            key = key_of(row)
            if key is None:
                unopened += 1
            else:
                hmac_keys.append(key)
    return InboxAuth(
        required, tuple(api_keys), tuple(logins), tuple(hmac_keys), unopened
    )


def read_inbox_credentials(conn: Connection[Any]) -> list[dict[str, Any]]:
    """Every active inbox credential, as stored."""
    return conn.execute(
        "SELECT id, project_id, kind, username, secret_hash, secret"
        " FROM inbox_credentials WHERE revoked_at IS NULL ORDER BY created_at, id"
    ).fetchall()


class SigningKeys:
    """Opens signing secrets through Vault, each once.

    Keys opened on an earlier load are reused, so a reload asks Vault only
    about new secrets, and about the ones it could not open before. Each
    failure is logged once, not on every retry. What is remembered is keyed
    by credential and ciphertext both, as Vault's answer depends on both.
    """

    def __init__(self, sealer: Sealer | None) -> None:
        self._sealer = sealer
        self._opened: dict[tuple[UUID, str], bytes] = {}
        self._failed: set[tuple[UUID, str]] = set()

    def inbox_auth(self, rows: Iterable[Mapping[str, Any]]) -> dict[UUID, InboxAuth]:
        """Every project with active inbox credentials, from their ``rows``."""
        opened: dict[tuple[UUID, str], bytes] = {}
        failed: set[tuple[UUID, str]] = set()
        # Once Vault has not answered, the rest of this load does not wait
        # on it secret after secret.
        unreachable = False

        def key_of(row: Mapping[str, Any]) -> bytes | None:
            nonlocal unreachable
            stored = (row["id"], row["secret"])
            key = self._opened.get(stored)
            if key is None:
                try:
                    if unreachable and not is_plain(row["secret"]):
                        raise VaultUnavailableError("Vault did not answer this load")
                    key = open_signing_key(*stored, self._sealer)
                # Whatever stops a secret opening (Vault down or refusing, a
                # login that fails) leaves it unopened and asked for again; it
                # must not stop the catalog loading.
                except Exception as exc:
                    unreachable |= isinstance(exc, VaultUnavailableError)
                    failed.add(stored)
                    if stored not in self._failed:
                        log.error(
                            "inbox_auth.secret_unopened",
                            credential_id=str(row["id"]),
                            project_id=str(row["project_id"]),
                            error=str(exc),
                        )
                    return None
            opened[stored] = key
            return key

        rows_of: dict[UUID, list[Mapping[str, Any]]] = {}
        for row in rows:
            rows_of.setdefault(row["project_id"], []).append(row)
        auth = {
            project: to_inbox_auth(project_rows, key_of)
            for project, project_rows in rows_of.items()
        }
        self._opened, self._failed = opened, failed
        return auth


@dataclass(frozen=True)
class IssuedInboxCredential:
    """A new credential: its id, to revoke it, and its secret, shown only once."""

    id: UUID
    secret: str


def create_api_key(
    conn: Connection[Any], project_id: UUID, name: str
) -> IssuedInboxCredential:
    """Generate an API key for a project's inbox; only its hash is stored."""
    key = secrets.token_urlsafe(_SECRET_BYTES)
    credential_id = _insert(
        conn, project_id, InboxCredentialKind.API_KEY, name, sha256(key.encode())
    )
    return IssuedInboxCredential(credential_id, key)


def create_basic_credential(
    conn: Connection[Any], project_id: UUID, username: str
) -> IssuedInboxCredential:
    """Generate a Basic password for ``username``; only its hash is stored.

    The platform chooses the password so that it has a key's entropy, which
    is what makes a fast unsalted hash, checked on every request, safe.

    Raises:
        InboxCredentialError: the user name is empty or contains a colon.
    """
    if not username or ":" in username:
        raise InboxCredentialError(
            f"expected a non-empty user name without ':', got {username!r}"
        )
    password = secrets.token_urlsafe(_SECRET_BYTES)
    credential_id = _insert(
        conn,
        project_id,
        InboxCredentialKind.BASIC,
        username,
        sha256(password.encode()),
        username=username,
    )
    return IssuedInboxCredential(credential_id, password)


def create_hmac_secret(
    conn: Connection[Any], project_id: UUID, name: str, sealer: Sealer
) -> IssuedInboxCredential:
    """Generate a ``whsec_`` signing secret for a project's inbox; only its
    sealed form is stored.

    Raises:
        SealRefusedError: Vault refused to seal it.
        VaultUnavailableError: Vault did not answer; nothing was stored.
    """
    secret = (
        HMAC_SECRET_PREFIX
        + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()
    )
    credential_id = uuid.uuid4()
    sealed = sealer.seal(signing_context(credential_id), secret.encode())
    _insert(
        conn,
        project_id,
        InboxCredentialKind.HMAC,
        name,
        None,
        secret=sealed,
        credential_id=credential_id,
    )
    return IssuedInboxCredential(credential_id, secret)


def seal_stored_secrets(conn: Connection[Any], sealer: Sealer) -> int:
    """Seal every signing secret still stored as it is; the number sealed.

    Safe to run from several processes at once: a row is replaced only if it
    still holds what was read.
    """
    rows = conn.execute(
        "SELECT id, project_id, secret FROM inbox_credentials"
        " WHERE kind = 'hmac' AND starts_with(secret, %s)",
        (HMAC_SECRET_PREFIX,),
    ).fetchall()
    sealed = 0
    for row in rows:
        ciphertext = sealer.seal(signing_context(row["id"]), row["secret"].encode())
        with conn.transaction():
            updated = conn.execute(
                "UPDATE inbox_credentials SET secret = %s"
                " WHERE id = %s AND secret = %s",
                (ciphertext, row["id"], row["secret"]),
            ).rowcount
            if updated:
                _announce_change(conn, row["project_id"])
        sealed += updated
    return sealed


def revoke(conn: Connection[Any], credential_id: UUID) -> bool:
    """Revoke an inbox credential; False if it was unknown or already revoked."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE inbox_credentials SET revoked_at = now()"
            " WHERE id = %s AND revoked_at IS NULL RETURNING project_id",
            (credential_id,),
        ).fetchone()
        if row is None:
            return False
        _announce_change(conn, row["project_id"])
    return True


def _insert(
    conn: Connection[Any],
    project_id: UUID,
    kind: InboxCredentialKind,
    name: str,
    secret_hash: bytes | None,
    *,
    username: str | None = None,
    secret: str | None = None,
    credential_id: UUID | None = None,
) -> UUID:
    if not name:
        raise InboxCredentialError("expected a name for the inbox credential")
    credential_id = credential_id or uuid.uuid4()
    with conn.transaction():
        conn.execute(
            "INSERT INTO inbox_credentials"
            " (id, project_id, kind, name, username, secret_hash, secret)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                credential_id,
                project_id,
                kind.value,
                name,
                username,
                secret_hash,
                secret,
            ),
        )
        _announce_change(conn, project_id)
    return credential_id


def _announce_change(conn: Connection[Any], project_id: UUID) -> None:
    # The revision tells a gateway that polls; the notification, sent at
    # commit, wakes the ones listening for deploys.
    conn.execute("UPDATE inbox_auth_revision SET revision = revision + 1")
    conn.execute("SELECT pg_notify(%s, %s)", (DEPLOY_CHANNEL, str(project_id)))
