"""EntraTokenProvider, connection strings with Authentication=Managed Identity, and what happens
without the optional packages: no relay needed."""

from __future__ import annotations

import logging
import sys
from typing import Any, List, Optional, Tuple

import pytest

from hybridconn import AuthenticationError, ConfigurationError, HybridConnectionListener
from hybridconn._entra import jwt_claims
from hybridconn._redact import redact
from hybridconn.auth import (
    MANAGED_IDENTITY,
    RELAY_SCOPE,
    ConnectionString,
    EntraTokenProvider,
    SharedAccessKeyTokenProvider,
    as_token_provider,
    connection_settings,
    make_credential,
)
from hybridconn.emulator import DevCredential, mint_token

MI_CS = "Endpoint=sb://contoso.servicebus.windows.net/;EntityPath=hc1;Authentication=Managed Identity"
KEY_CS = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t;EntityPath=hc1"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Answer:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token, self.expires_on = token, expires_on


class ScriptedCredential:
    """Hands out the tokens it is given, in order (the last one again and again); counts the calls."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: List[Tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.calls.append(scopes)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_relay_scope_is_spelled_as_microsofts_clients_spell_it() -> None:
    # .NET ManagedIdentityTokenProvider.cs:16 and Java AzureIdentityTokenProvider.java:24: resource + "/.default".
    assert RELAY_SCOPE == "https://relay.azure.net//.default"
    credential = DevCredential()
    token, expires_on = EntraTokenProvider(credential).get_token("http://contoso.servicebus.windows.net/hc1")
    assert credential.scopes == [RELAY_SCOPE]
    assert not token.lower().startswith("bearer")  # the token goes on the wire as it is
    assert jwt_claims(token)["aud"] == "https://relay.azure.net/"
    assert expires_on == jwt_claims(token)["exp"]


def test_a_token_is_kept_until_80_percent_of_its_life_then_renewed() -> None:
    clock = Clock()
    credential = DevCredential(lifetime=3600, clock=clock)
    provider = EntraTokenProvider(credential, clock=clock)
    first = provider.get_token("http://ns/hc1")
    clock.now += 2879
    assert provider.get_token("http://ns/hc2") == first  # one token for every hybrid connection
    assert credential.calls == 1
    clock.now += 2
    second = provider.get_token("http://ns/hc1")
    assert second != first and second[1] == first[1] + 2881
    assert credential.calls == 2


def test_the_credentials_cached_token_is_handed_back_and_asked_for_again_later() -> None:
    clock = Clock()
    credential = ScriptedCredential(Answer("eyJ.a.one", clock.now + 600), Answer("eyJ.a.one", clock.now + 600),
                                    Answer("eyJ.a.two", clock.now + 1200))
    provider = EntraTokenProvider(credential, clock=clock)
    assert provider.get_token("a") == ("eyJ.a.one", clock.now + 600)
    clock.now += 480  # 80 %: ask; the credential still has the same token (its own cache)
    assert provider.get_token("a")[0] == "eyJ.a.one"
    assert len(credential.calls) == 2
    assert provider.get_token("a")[0] == "eyJ.a.one"
    assert len(credential.calls) == 2  # not asked again at once
    clock.now += 30
    assert provider.get_token("a") == ("eyJ.a.two", clock.now - 510 + 1200)
    assert len(credential.calls) == 3


def test_get_token_info_is_preferred_and_get_token_is_enough() -> None:
    class InfoOnly:
        def get_token_info(self, *scopes: str, options: Optional[dict] = None) -> Answer:
            return Answer("eyJ.b.info", 2_000_000_000)

    assert EntraTokenProvider(InfoOnly()).get_token("a") == ("eyJ.b.info", 2_000_000_000.0)
    assert (
        EntraTokenProvider(ScriptedCredential(Answer("eyJ.b.plain", 2_000_000_000))).get_token("a")[0] == "eyJ.b.plain"
    )


def test_a_missing_expiry_is_read_from_the_jwt() -> None:
    token, expires_on = mint_token(lifetime=900)
    assert EntraTokenProvider(ScriptedCredential(Answer(token, 0))).get_token("a") == (token, float(expires_on))


def test_a_failing_credential_is_an_authentication_error_without_the_token_or_secret() -> None:
    leaked, _ = mint_token()
    cause = RuntimeError(f"AADSTS7000215: Invalid client secret provided. client_secret=hunter2 last={leaked}")
    provider = EntraTokenProvider(ScriptedCredential(cause))
    with pytest.raises(AuthenticationError) as info:
        provider.get_token("a")
    message = str(info.value)
    assert message.startswith("Microsoft Entra ID: ScriptedCredential could not get a token for https://relay.azure.net//.default")
    assert "AADSTS7000215" in message and "hunter2" not in message and leaked not in message
    assert info.value.__cause__ is cause
    assert "eyJ" not in repr(provider) and repr(provider) == (
        "EntraTokenProvider(ScriptedCredential, scope='https://relay.azure.net//.default')")


def test_a_failure_while_the_token_is_valid_keeps_it_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    good = Answer("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig", clock.now + 100)
    provider = EntraTokenProvider(
        ScriptedCredential(good, ConnectionError("the identity endpoint is down")), clock=clock
    )
    assert provider.get_token("a")[0] == good.token
    clock.now += 81
    with caplog.at_level(logging.WARNING, logger="hybridconn"):
        assert provider.get_token("a")[0] == good.token
    assert "the identity endpoint is down" in caplog.text and "valid for 19 s more" in caplog.text
    assert good.token not in caplog.text
    clock.now += 20  # expired now: the failure is raised
    with pytest.raises(AuthenticationError, match="identity endpoint is down"):
        provider.get_token("a")


def test_credentials_are_wrapped_wherever_a_token_provider_goes() -> None:
    credential = DevCredential()
    wrapped = as_token_provider(credential)
    assert isinstance(wrapped, EntraTokenProvider) and wrapped.credential is credential
    listener = HybridConnectionListener("ws://127.0.0.1:1", "hc1", token_provider=credential)
    assert isinstance(listener.token_provider, EntraTokenProvider)
    with pytest.raises(ConfigurationError, match="azure-identity credential"):
        EntraTokenProvider(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        connection_settings(KEY_CS, None, 3600, {"credential": credential, "token_provider": lambda a: ("x", 1)})


def test_credential_replaces_the_connection_strings_keys() -> None:
    options = {"credential": DevCredential(), "max_workers": 2}
    namespace, path, provider = connection_settings(KEY_CS, None, 3600, options)
    assert isinstance(provider, EntraTokenProvider) and path == "hc1" and options == {"max_workers": 2}
    _, _, keys = connection_settings(KEY_CS, None, 3600, {})
    assert isinstance(keys, SharedAccessKeyTokenProvider)


@pytest.mark.parametrize("spelling", ["Managed Identity", "ManagedIdentity", "managed identity", " MANAGED-IDENTITY ",
                                      "Managed_Identity"])
def test_managed_identity_spellings(spelling: str) -> None:
    cs = ConnectionString.parse(f"Endpoint=sb://contoso.servicebus.windows.net/;EntityPath=hc1;Authentication={spelling}")
    assert cs.authentication == MANAGED_IDENTITY and cs.managed_identity
    assert str(cs) == MI_CS and ConnectionString.parse(cs.to_connection_string()) == cs


def test_other_authentication_values() -> None:
    assert ConnectionString.parse("Endpoint=sb://ns/;Authentication=Other").authentication is None
    for value in ("Garbage", "1", "Active Directory Default"):
        with pytest.raises(ConfigurationError, match="unknown Authentication"):
            ConnectionString.parse(f"Endpoint=sb://ns/;Authentication={value}")


@pytest.mark.parametrize(
    "fields",
    [
        "SharedAccessKeyName=k;SharedAccessKey=s3cr3t",
        "SharedAccessSignature=SharedAccessSignature sr=a&sig=b&se=1&skn=k",
        "SharedAccessKeyName=k",
    ],
)
def test_managed_identity_with_sas_fields_is_refused(fields: str) -> None:
    # As .NET's RelayConnectionStringBuilder.Validate() refuses it.
    with pytest.raises(ConfigurationError, match="choose one") as info:
        ConnectionString.parse(f"Endpoint=sb://ns/;{fields};Authentication=Managed Identity")
    assert "s3cr3t" not in str(info.value)


def test_managed_identity_makes_a_managed_identity_credential() -> None:
    provider = ConnectionString.parse(MI_CS).token_provider()
    assert isinstance(provider, EntraTokenProvider)
    assert type(provider.credential).__name__ == "ManagedIdentityCredential"
    assert provider.scope == RELAY_SCOPE


def test_without_azure_identity_one_clear_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import azure.identity now fails
    hint = r'pip install "hybridconn\[azure\]"'
    with pytest.raises(ConfigurationError, match=hint):
        HybridConnectionListener.from_connection_string(MI_CS)
    with pytest.raises(ConfigurationError, match=hint):
        make_credential("default")
    # A credential the caller made needs nothing of azure-identity.
    assert isinstance(as_token_provider(DevCredential()), EntraTokenProvider)


def test_without_pyjwt_the_dev_credential_names_the_emulator_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(ConfigurationError, match=r'pip install "hybridconn\[emulator\]"'):
        DevCredential().get_token(RELAY_SCOPE)


def test_make_credential_knows_the_cli_names() -> None:
    assert type(make_credential("azure-cli")).__name__ == "AzureCliCredential"
    assert type(make_credential("managed_identity")).__name__ == "ManagedIdentityCredential"
    with pytest.raises(ConfigurationError, match="unknown credential 'magic': choose one of default"):
        make_credential("magic")


def test_redaction_of_entra_secrets() -> None:
    token, _ = mint_token()
    text = (f"ServiceBusAuthorization: {token}\nAuthorization: Bearer {token}\n"
            f"grant_type=client_credentials&client_secret=hunter2&client_assertion={token}&scope=x\n"
            f'{{"renewToken":{{"token":"{token}"}}}} {{"access_token": "{token}"}}')
    cleaned = redact(text)
    assert token not in cleaned and "hunter2" not in cleaned and "eyJ" not in cleaned
    assert "client_secret=<redacted>" in cleaned and "Bearer <redacted>" in cleaned
