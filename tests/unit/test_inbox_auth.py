"""Inbox credentials verify in memory: keys, Basic logins and webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.inbox_auth import (
    InboxAuth,
    InboxCredentialError,
    SignedRequest,
    SigningKeys,
    Verdict,
    parse_hmac_secret,
    sha256,
    sign,
    signing_context,
    verify_request,
)
from shared.vault import SealRefusedError, VaultUnavailableError

NOW_S = 1_700_000_000
TOLERANCE_S = 300
BODY = b'{"form": "referral"}'
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def auth_of(*rows: dict[str, Any]) -> InboxAuth:
    """One project's credentials, signing secrets stored as plain text."""
    project = uuid4()
    loaded = SigningKeys(None).inbox_auth(
        [{"id": uuid4(), "project_id": project, **row} for row in rows]
    )
    return loaded[project]


def api_key(key: str) -> dict[str, Any]:
    return {"kind": "api_key", "secret_hash": sha256(key.encode())}


def basic(username: str, password: str) -> dict[str, Any]:
    return {
        "kind": "basic",
        "username": username,
        "secret_hash": sha256(password.encode()),
    }


def hmac_secret(secret: str) -> dict[str, Any]:
    return {"kind": "hmac", "secret": secret}


def basic_header(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def signed_headers(
    secret: str = SECRET,
    webhook_id: str = "msg_1",
    timestamp_s: int = NOW_S,
    body: bytes = BODY,
) -> dict[str, str]:
    # Computed here from the scheme's description, not with the module's sign().
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{webhook_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def verdict(
    auth: InboxAuth, headers: dict[str, str], body: bytes = BODY, now_s: float = NOW_S
) -> Verdict:
    return verify_request(auth, headers, body, now_s, TOLERANCE_S).verdict


def test_an_inbox_without_credentials_accepts_anything() -> None:
    assert verdict(InboxAuth(), {}) is Verdict.ACCEPTED
    assert verdict(InboxAuth(), {"x-api-key": "whatever"}) is Verdict.ACCEPTED


def test_an_api_key_is_accepted_and_a_wrong_one_refused() -> None:
    auth = auth_of(api_key("right"))
    assert verdict(auth, {"x-api-key": "right"}) is Verdict.ACCEPTED
    assert verdict(auth, {"x-api-key": "wrong"}) is Verdict.REFUSED
    assert verdict(auth, {"x-api-key": ""}) is Verdict.REFUSED


def test_no_credential_at_all_is_missing() -> None:
    auth = auth_of(api_key("right"), basic("commcare", "pw"), hmac_secret(SECRET))
    assert verdict(auth, {"content-type": "application/json"}) is Verdict.MISSING


def test_a_method_the_project_does_not_use_counts_as_missing() -> None:
    auth = auth_of(api_key("right"))
    assert verdict(auth, basic_header("commcare", "pw")) is Verdict.MISSING
    assert verdict(auth, signed_headers()) is Verdict.MISSING


def test_two_live_api_keys_both_work_during_rotation() -> None:
    auth = auth_of(api_key("old"), api_key("new"))
    assert verdict(auth, {"x-api-key": "old"}) is Verdict.ACCEPTED
    assert verdict(auth, {"x-api-key": "new"}) is Verdict.ACCEPTED
    assert verdict(auth_of(api_key("new")), {"x-api-key": "old"}) is Verdict.REFUSED


def test_basic_needs_the_right_user_and_password_together() -> None:
    auth = auth_of(basic("commcare", "pw1"), basic("dhis2", "pw2"))
    assert verdict(auth, basic_header("commcare", "pw1")) is Verdict.ACCEPTED
    assert verdict(auth, basic_header("dhis2", "pw2")) is Verdict.ACCEPTED
    assert verdict(auth, basic_header("commcare", "pw2")) is Verdict.REFUSED
    assert verdict(auth, basic_header("nobody", "pw1")) is Verdict.REFUSED


def test_the_basic_scheme_name_is_case_insensitive() -> None:
    auth = auth_of(basic("commcare", "pw"))
    token = basic_header("commcare", "pw")["authorization"].split()[1]
    assert verdict(auth, {"authorization": f"basic {token}"}) is Verdict.ACCEPTED


def test_a_malformed_basic_header_is_refused_and_another_scheme_missing() -> None:
    auth = auth_of(basic("commcare", "pw"))
    assert verdict(auth, {"authorization": "Basic %%%"}) is Verdict.REFUSED
    assert verdict(auth, {"authorization": "Bearer abc"}) is Verdict.MISSING


def test_a_password_may_contain_colons() -> None:
    auth = auth_of(basic("commcare", "a:b:c"))
    assert verdict(auth, basic_header("commcare", "a:b:c")) is Verdict.ACCEPTED


def test_a_signature_computed_from_the_scheme_is_accepted() -> None:
    auth = auth_of(hmac_secret(SECRET))
    verification = verify_request(auth, signed_headers(), BODY, NOW_S, TOLERANCE_S)
    assert verification.verdict is Verdict.ACCEPTED
    assert verification.signed == SignedRequest("msg_1", NOW_S + TOLERANCE_S)


def test_the_published_standard_webhooks_example_verifies() -> None:
    key = parse_hmac_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(
        key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_changed_body_id_or_timestamp_breaks_the_signature() -> None:
    auth = auth_of(hmac_secret(SECRET))
    headers = signed_headers()
    assert verdict(auth, headers, body=BODY + b" ") is Verdict.REFUSED
    assert verdict(auth, {**headers, "webhook-id": "msg_2"}) is Verdict.REFUSED
    moved = {**headers, "webhook-timestamp": str(NOW_S + 1)}
    assert verdict(auth, moved) is Verdict.REFUSED


def test_a_signature_with_another_secret_is_refused() -> None:
    auth = auth_of(hmac_secret(SECRET))
    assert verdict(auth, signed_headers(OTHER_SECRET)) is Verdict.REFUSED


def test_any_of_several_signatures_may_match() -> None:
    auth = auth_of(hmac_secret(SECRET))
    right = signed_headers()["webhook-signature"]
    wrong = signed_headers(OTHER_SECRET)["webhook-signature"]
    headers = {**signed_headers(), "webhook-signature": f"v1a,xyz= {wrong} {right}"}
    assert verdict(auth, headers) is Verdict.ACCEPTED


def test_two_live_secrets_both_verify_during_rotation() -> None:
    auth = auth_of(hmac_secret(SECRET), hmac_secret(OTHER_SECRET))
    assert verdict(auth, signed_headers(SECRET)) is Verdict.ACCEPTED
    assert verdict(auth, signed_headers(OTHER_SECRET)) is Verdict.ACCEPTED


def test_only_v1_signatures_count() -> None:
    auth = auth_of(hmac_secret(SECRET))
    headers = signed_headers()
    unversioned = headers["webhook-signature"].replace("v1,", "v2,")
    assert verdict(auth, {**headers, "webhook-signature": unversioned}) is (
        Verdict.REFUSED
    )


@pytest.mark.parametrize("skew_s", [-TOLERANCE_S, 0, TOLERANCE_S])
def test_a_timestamp_within_the_tolerance_is_accepted(skew_s: int) -> None:
    auth = auth_of(hmac_secret(SECRET))
    headers = signed_headers(timestamp_s=NOW_S + skew_s)
    assert verdict(auth, headers) is Verdict.ACCEPTED


@pytest.mark.parametrize("skew_s", [-TOLERANCE_S - 1, TOLERANCE_S + 1])
def test_a_stale_or_future_timestamp_is_refused(skew_s: int) -> None:
    auth = auth_of(hmac_secret(SECRET))
    headers = signed_headers(timestamp_s=NOW_S + skew_s)
    assert verdict(auth, headers) is Verdict.REFUSED


@pytest.mark.parametrize(
    "changes",
    [
        {"webhook-id": ""},
        {"webhook-id": "x" * 257},
        {"webhook-timestamp": "soon"},
        {"webhook-timestamp": "-1"},
        {"webhook-signature": "garbage"},
    ],
)
def test_malformed_signature_headers_are_refused(changes: dict[str, str]) -> None:
    auth = auth_of(hmac_secret(SECRET))
    assert verdict(auth, {**signed_headers(), **changes}) is Verdict.REFUSED


def test_a_right_api_key_wins_over_a_wrong_signature() -> None:
    auth = auth_of(api_key("right"), hmac_secret(SECRET))
    headers = {**signed_headers(OTHER_SECRET), "x-api-key": "right"}
    verification = verify_request(auth, headers, BODY, NOW_S, TOLERANCE_S)
    assert verification.verdict is Verdict.ACCEPTED
    assert verification.signed is None


def test_a_right_signature_wins_over_a_wrong_api_key() -> None:
    auth = auth_of(api_key("right"), hmac_secret(SECRET))
    headers = {**signed_headers(), "x-api-key": "wrong"}
    assert verdict(auth, headers) is Verdict.ACCEPTED


def test_whsec_secrets_parse_to_their_key() -> None:
    assert parse_hmac_secret(SECRET) == b"k" * 32


@pytest.mark.parametrize("secret", ["k" * 32, "whsec_", "whsec_not base64!"])
def test_a_malformed_whsec_secret_is_an_error(secret: str) -> None:
    with pytest.raises(InboxCredentialError):
        parse_hmac_secret(secret)


def test_an_unreadable_stored_secret_closes_the_inbox_rather_than_opening_it() -> None:
    auth = auth_of(hmac_secret("not-a-whsec-secret"))
    assert auth.required
    assert auth.unopened == 1
    assert verdict(auth, {}) is Verdict.MISSING
    # The signature may be the unreadable secret's: not refused, not let in.
    assert verdict(auth, signed_headers()) is Verdict.UNCHECKED


def test_a_signature_no_opened_key_verifies_is_unchecked_while_one_is_unopened() -> (
    None
):
    auth = InboxAuth(required=True, hmac_keys=(parse_hmac_secret(SECRET),), unopened=1)
    assert verdict(auth, signed_headers(SECRET)) is Verdict.ACCEPTED
    assert verdict(auth, signed_headers(OTHER_SECRET)) is Verdict.UNCHECKED
    assert verdict(auth, {"x-api-key": "anything"}) is Verdict.MISSING


class VaultLike:
    """Seals by remembering, bound to the context; counts what it opens and
    can be made to fail as an unreachable Vault does."""

    def __init__(self) -> None:
        self.sealed: dict[str, tuple[bytes, bytes]] = {}
        self.asked = 0
        self.unsealed = 0
        self.down = False

    def seal(self, context: bytes, plaintext: bytes) -> str:
        ciphertext = f"vault:v1:{len(self.sealed)}"
        self.sealed[ciphertext] = (context, plaintext)
        return ciphertext

    def unseal(self, context: bytes, ciphertext: str) -> bytes:
        self.asked += 1
        if self.down:
            raise VaultUnavailableError("Vault is not reachable")
        self.unsealed += 1
        bound, plaintext = self.sealed[ciphertext]
        if bound != context:
            raise SealRefusedError("cipher: message authentication failed")
        return plaintext


def sealed_row(vault: VaultLike, secret: str, project: UUID) -> dict[str, Any]:
    credential_id = uuid4()
    stored = vault.seal(signing_context(credential_id), secret.encode())
    return {
        "id": credential_id,
        "project_id": project,
        "kind": "hmac",
        "secret": stored,
    }


def test_signing_keys_open_each_sealed_secret_once_across_loads() -> None:
    vault, project = VaultLike(), uuid4()
    rows = [
        sealed_row(vault, SECRET, project),
        sealed_row(vault, OTHER_SECRET, project),
    ]
    keys = SigningKeys(vault)

    first = keys.inbox_auth(rows)
    again = keys.inbox_auth(rows)

    assert vault.unsealed == 2
    assert set(first[project].hmac_keys) == {b"k" * 32, b"o" * 32}
    assert again == first
    assert verdict(again[project], signed_headers(OTHER_SECRET)) is Verdict.ACCEPTED


def test_a_secret_vault_cannot_open_now_is_opened_on_a_later_load() -> None:
    vault, project = VaultLike(), uuid4()
    rows = [sealed_row(vault, SECRET, project)]
    keys = SigningKeys(vault)
    vault.down = True

    during = keys.inbox_auth(rows)[project]
    vault.down = False
    after = keys.inbox_auth(rows)[project]

    assert (during.unopened, during.hmac_keys) == (1, ())
    assert verdict(during, signed_headers()) is Verdict.UNCHECKED
    assert (after.unopened, after.hmac_keys) == (0, (b"k" * 32,))


def test_a_load_stops_asking_vault_once_it_does_not_answer() -> None:
    vault, project = VaultLike(), uuid4()
    rows = [
        sealed_row(vault, SECRET, project),
        sealed_row(vault, OTHER_SECRET, project),
    ]
    vault.down = True

    auth = SigningKeys(vault).inbox_auth(rows)[project]

    assert vault.asked == 1
    assert auth.unopened == 2


def test_a_sealed_secret_moved_to_another_credential_does_not_open() -> None:
    vault, project = VaultLike(), uuid4()
    row = sealed_row(vault, SECRET, project)
    moved = {**sealed_row(vault, OTHER_SECRET, project), "secret": row["secret"]}
    keys = SigningKeys(vault)
    keys.inbox_auth([row])

    auth = keys.inbox_auth([row, moved])[project]

    assert (auth.unopened, auth.hmac_keys) == (1, (b"k" * 32,))


def test_a_secret_stored_before_sealing_opens_without_vault() -> None:
    project = uuid4()
    row = {"id": uuid4(), "project_id": project, "kind": "hmac", "secret": SECRET}
    sealed = sealed_row(VaultLike(), OTHER_SECRET, project)

    auth = SigningKeys(None).inbox_auth([row, sealed])[project]

    assert (auth.unopened, auth.hmac_keys) == (1, (b"k" * 32,))
