"""SMTP reply lines used in more than one place, with RFC 3463 enhanced codes.

Texts read by professionals' mail clients are French with the English meaning
in parentheses, so that both users and administrators of other operators
understand them.
"""

from __future__ import annotations

OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Identifiant ou mot de passe incorrect (invalid credentials)"
AUTH_REQUIRED = "530 5.7.0 Authentification requise (authentication required)"
AUTH_THROTTLED = (
    "454 4.7.0 Trop d'échecs d'authentification, réessayez plus tard (too many failures)"
)
AUTH_ABORTED = "501 5.7.0 Authentification abandonnée (authentication aborted)"
AUTH_MALFORMED = "501 5.5.2 Données d'authentification mal formées (malformed authentication data)"
AUTH_MECHANISM_UNAVAILABLE = (
    "504 5.5.4 Mécanisme d'authentification indisponible ici (mechanism not available here)"
)
STARTTLS_REQUIRED = "530 5.7.0 Passez d'abord en TLS avec STARTTLS (must issue STARTTLS first)"
CLIENT_CERT_REQUIRED = (
    "530 5.7.0 Certificat client IGC-Santé requis (trust-space client certificate required)"
)
TEMPORARY_FAILURE = "451 4.3.0 Erreur temporaire, réessayez plus tard (temporary failure)"
TOO_MANY_RECIPIENTS = "452 4.5.3 Trop de destinataires (too many recipients)"
MESSAGE_TOO_BIG = "552 5.3.4 Message trop volumineux (message size exceeds the maximum)"
HEADER_TOO_BIG = "552 5.3.4 En-têtes trop volumineux (header section too large)"
LINE_TOO_LONG = "500 5.5.6 Ligne trop longue (line too long, RFC 5321 §4.5.3.1.6)"
BARE_LINE_ENDING = (
    "550 5.6.0 CR ou LF isolé refusé (bare CR or LF in message data, RFC 5321 §2.3.8)"
)
DATA_TIMEOUT = "421 4.4.2 Délai dépassé pendant la réception (timeout while receiving data)"
SYNTAX_MAIL = "501 5.5.4 Syntaxe (syntax) : MAIL FROM:<adresse> [paramètres]"
SYNTAX_RCPT = "501 5.5.4 Syntaxe (syntax) : RCPT TO:<adresse> [paramètres]"
BAD_ADDRESS = "553 5.1.3 Adresse mal formée (malformed address)"
NESTED_MAIL = "503 5.5.1 Commande MAIL déjà donnée (nested MAIL command)"
NEED_MAIL = "503 5.5.1 Commande MAIL attendue d'abord (need MAIL command)"
NEED_RCPT = "503 5.5.1 Commande RCPT attendue d'abord (need RCPT command)"
