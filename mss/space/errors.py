"""The space's refusals: raised where decided, rendered once (`app.py`) as a French page
(with the English meaning) and the right HTTP status."""

from __future__ import annotations


class SpaceError(Exception):
    """A refusal shown to the patient: `status`, a French text and its English meaning."""

    status = 400

    def __init__(self, french: str, english: str, *, status: int | None = None) -> None:
        super().__init__(f"{french} ({english})")
        self.french = french
        self.english = english
        if status is not None:
            self.status = status


class LoginRequired(SpaceError):
    """No live session: pages redirect to the login page, htmx requests get 401."""

    status = 401

    def __init__(self) -> None:
        super().__init__(
            "Votre session a expiré ou vous n'êtes pas connecté.",
            "Not logged in or session expired.",
        )


class Forbidden(SpaceError):
    status = 403


class NotFound(SpaceError):
    """Also what an id of someone else's gets: ids cannot be probed."""

    status = 404

    def __init__(self) -> None:
        super().__init__("Cette page n'existe pas.", "Not found.")


BAD_CSRF = Forbidden(
    "Ce formulaire a expiré ou ne vient pas de votre espace : rechargez la page et recommencez.",
    "Missing or invalid CSRF token.",
)
