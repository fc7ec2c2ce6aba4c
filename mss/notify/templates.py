"""The French texts of the notices: something is waiting, and a link; nothing more.

No notice names the sender, a subject, a professional, a document's title or type
(DOMAIN.md §8; Mon espace santé's app; CSP L1110-4; the CNIL's advice on e-mail):
the texts below take no argument but the link, the service's name and, for the
account notices, a one-time code. A test renders every event on every channel with
unique strings in the event and fails if any of them appears.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.notify.base import ChannelName


@dataclass(frozen=True, slots=True)
class Text:
    subject: str  # e-mail subject
    body: str  # what it says, before the link ("{service}" and "{code}" are filled in)
    after: str = "Connectez-vous pour le consulter : {link}"
    # the SMS's words when `body` has letters outside GSM-7 (ç, ê…: each would make the
    # SMS a UCS-2 one, three times the price)
    sms: str = ""


TEXTS: dict[str, Text] = {
    "new_message": Text(
        "Nouveau message dans votre messagerie de santé",
        "Vous avez reçu un nouveau message dans votre messagerie de santé {service}.",
        sms="Un nouveau message vous attend dans votre messagerie de santé {service}. "
        "Connectez-vous pour le consulter : {link}",
    ),
    "conversation_ended": Text(
        "Un échange de votre messagerie de santé a pris fin",
        "Un professionnel de santé a mis fin à un échange dans votre messagerie de santé "
        "{service}.",
    ),
    "new_document": Text(
        "Nouveau document dans votre dossier médical",
        "Un nouveau document a été ajouté à votre dossier médical {service}.",
    ),
    "first_access": Text(
        "Votre dossier médical a été consulté",
        "Un professionnel de santé a consulté votre dossier médical {service} pour la "
        "première fois.",
        "Retrouvez le détail dans l'historique de votre espace : {link}",
    ),
    "profile_created": Text(
        "Votre service {service} a été créé",
        "Votre service {service} a été créé.",
        "Activez-le pour accéder à votre messagerie et à votre dossier médical : {link}",
    ),
    "profile_closed": Text(
        "Votre profil {service} a été fermé",
        "Votre profil {service} a été fermé : vous ne recevez plus de messages de santé.",
        "Pour le rouvrir, rendez-vous sur {link}",
    ),
    "profile_reopened": Text(
        "Votre profil {service} a été rouvert",
        "Votre profil {service} a été rouvert.",
        "Connectez-vous : {link}",
    ),
    "activation_code": Text(
        "Votre code d'activation {service}",
        "Votre code d'activation {service} : {code}. Ne le communiquez à personne.",
        "Activez votre espace sur {link}",
    ),
    "login_code": Text(
        "Votre code de connexion {service}",
        "Votre code de connexion {service} : {code}. Il n'est valable que quelques minutes. "
        "Ne le communiquez à personne.",
        "",
    ),
    "password_changed": Text(
        "Le mot de passe de votre espace a été modifié",
        "Le mot de passe de votre espace {service} a été modifié.",
        "Si vous n'êtes pas à l'origine de ce changement, rendez-vous sur {link}",
        sms="Le mot de passe de votre espace {service} a été modifié. Si ce n'est pas vous, "
        "rendez-vous sur {link}",
    ),
    "new_device": Text(
        "Nouvel appareil connecté à votre espace",
        "Un nouvel appareil s'est connecté à votre espace {service}.",
        "Si ce n'est pas vous, retirez-le sur {link}",
    ),
}


def render(event: str, channel: ChannelName, *, link: str, service: str,
           code: str = "") -> tuple[str, str]:  # fmt: skip
    """(subject, text) of a notice; the text is the same on every channel but push,
    whose payload is an opaque id (the page the browser opens says the rest)."""
    text = TEXTS[event]
    subject = text.subject.format(service=service)
    after = text.after.format(link=link)
    if channel is ChannelName.SMS and text.sms:
        return subject, text.sms.format(service=service, code=code, link=link)
    body = text.body.format(service=service, code=code)
    full = f"{body} {after}".strip() if channel is ChannelName.SMS else f"{body}\n\n{after}"
    return subject, full.strip()


def email_body(text: str, service: str) -> str:
    """The whole e-mail: the notice, then why it came and how to stop it."""
    return (
        f"Bonjour,\n\n{text}\n\n"
        f"Ce message automatique ne contient aucune information sur votre santé : "
        f"elles ne sont visibles qu'une fois connecté à votre espace {service}.\n"
        f"Vous pouvez choisir les notifications que vous recevez dans les paramètres de "
        f"votre espace.\n"
    )
