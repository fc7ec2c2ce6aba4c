"""Before login: STARTTLS, LOGIN and AUTHENTICATE (RFC 3501 §6.2, RFC 4959 SASL-IR).

Credentials are accepted only over TLS. PLAIN, EXTERNAL (the client
certificate) and, when configured, the bearer mechanisms XOAUTH2 and
OAUTHBEARER (RFC 7628) are checked by the `LoginService`, which also throttles
repeated failures; the account found is the session's from then on.
"""

from __future__ import annotations

import base64

from mss.core import sasl
from mss.imap.base import SessionBase, State
from mss.imap.errors import AlreadyAnswered, ImapError, bad
from mss.imap.parsing.commands import Command
from mss.security.auth import LoginResult

MECHANISMS = ("PLAIN", "XOAUTH2", "OAUTHBEARER", "EXTERNAL")
BEARER_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
LOGIN_OVER_TLS_ONLY = (
    "Identification seulement sous TLS : utilisez STARTTLS (login only over TLS, use STARTTLS)"
)
DOOR = "imap"  # in the login service's log of refusals


def _failed() -> ImapError:
    return ImapError("Identifiants invalides (authentication failed)", code="AUTHENTICATIONFAILED")


class AuthCommands(SessionBase):
    async def do_STARTTLS(self, command: Command) -> None:
        if self.channel.tls:
            raise bad("TLS déjà actif (TLS is already active)")
        self._out.append(f"{command.tag} OK Begin TLS negotiation now\r\n".encode())
        await self.flush()
        await self.channel.start_tls()
        raise AlreadyAnswered

    async def do_LOGIN(self, command: Command) -> str:
        if not self.channel.tls:
            raise ImapError(LOGIN_OVER_TLS_ONLY, code="PRIVACYREQUIRED")
        result = await self.logins.with_password(
            command.args["user"],
            command.args["password"],
            self.channel.peer_ip,
            self._kinds(),
            door=DOOR,
        )
        return await self._login(result)

    async def do_AUTHENTICATE(self, command: Command) -> str:
        mechanism = command.args["mechanism"]
        self._check_mechanism(mechanism)
        raw = await self._sasl_response(command.args["initial"])
        try:
            result = await self._sasl_login(mechanism, raw)
        except sasl.SaslError as exc:
            raise bad(
                f"Données {mechanism} mal formées (malformed {mechanism} data: {exc})"
            ) from None
        return await self._login(result)

    # --- steps ------------------------------------------------------------------------------

    def _kinds(self) -> tuple[str, ...]:
        base = ("professional", "applicative")
        return (*base, "patient") if self.config.allow_patients else base

    async def _login(self, result: LoginResult) -> str:
        if result.throttled:
            raise ImapError(
                "Trop d'échecs, réessayez plus tard (too many failures)", code="UNAVAILABLE"
            )
        if result.identity is None:
            raise _failed()
        account_id = await self.store.account_id(result.identity.address)
        if account_id is None:
            raise _failed()
        self.identity = result.identity
        self.account_id = account_id
        self.state = State.AUTHENTICATED
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    def _check_mechanism(self, mechanism: str) -> None:
        if not self.channel.tls:
            raise ImapError(LOGIN_OVER_TLS_ONLY, code="PRIVACYREQUIRED")
        if mechanism not in MECHANISMS:
            raise ImapError(
                f"Mécanisme {mechanism} non pris en charge (mechanism not supported)", code="CANNOT"
            )
        if mechanism in BEARER_MECHANISMS and not self.logins.bearer_enabled:
            raise ImapError(
                f"Mécanisme {mechanism} non configuré ici (mechanism not configured)", code="CANNOT"
            )

    async def _sasl_login(self, mechanism: str, raw: bytes) -> LoginResult:
        if mechanism == "PLAIN":
            return await self._plain(raw)
        if mechanism == "EXTERNAL":
            return await self.logins.with_certificate(
                self.channel.peer_certificate,
                sasl.parse_external(raw),
                self.channel.peer_ip,
                self._kinds(),
                door=DOOR,
            )
        return await self._bearer(mechanism, raw)

    async def _plain(self, raw: bytes) -> LoginResult:
        creds = sasl.parse_plain(raw)
        if creds.authzid and creds.authzid.lower() != creds.authcid.lower():
            raise ImapError(
                "Identité d'autorisation refusée (authorization identity refused)",
                code="AUTHORIZATIONFAILED",
            )
        return await self.logins.with_password(
            creds.authcid, creds.password, self.channel.peer_ip, self._kinds(), door=DOOR
        )

    async def _bearer(self, mechanism: str, raw: bytes) -> LoginResult:
        parse = sasl.parse_xoauth2 if mechanism == "XOAUTH2" else sasl.parse_oauthbearer
        bearer = parse(raw)
        result = await self.logins.with_bearer(
            bearer.user, bearer.token, self.channel.peer_ip, self._kinds(), door=DOOR
        )
        if not result.ok and not result.throttled:
            await self._sasl_error_challenge()
        return result

    async def _sasl_response(self, initial: str | None) -> bytes:
        if initial is not None:
            return self._initial_response(initial)
        await self.channel.write(b"+ \r\n")
        line = await self.channel.read_line()
        if line is None:
            raise bad(
                "Connexion fermée pendant l'authentification "
                "(connection closed during authentication)"
            )
        if line.strip() == b"*":
            raise bad("Authentification annulée (authentication cancelled)")
        try:
            return sasl.decode_base64(line.strip())
        except sasl.SaslError:
            raise bad("Réponse non codée en base64 (response is not base64)") from None

    @staticmethod
    def _initial_response(initial: str) -> bytes:
        """RFC 4959 SASL-IR: "=" stands for an empty response."""
        if initial == "=":
            return b""
        try:
            return sasl.decode_base64(initial)
        except sasl.SaslError:
            raise bad(
                "Réponse initiale non codée en base64 (initial response is not base64)"
            ) from None

    async def _sasl_error_challenge(self) -> None:
        """RFC 7628 §3.2.2: an error challenge; the client answers with an empty line."""
        await self.channel.write(
            b"+ " + base64.b64encode(b'{"status":"401","schemes":"bearer"}') + b"\r\n"
        )
        await self.channel.read_line()
