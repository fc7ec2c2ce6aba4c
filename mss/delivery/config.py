"""What the delivery pipeline needs to know of the settings, in one value object."""

from __future__ import annotations

from dataclasses import dataclass, field

from mss.store.quotas import Quota


@dataclass(frozen=True, kw_only=True)
class DeliveryConfig:
    hostname: str
    professional_domains: tuple[str, ...]
    patient_domain: str
    host_patient_domain: bool = True
    # Mailboxes of other operators allowed to write to patients before the annuaire lists them.
    remote_professionals: frozenset[str] = field(default_factory=frozenset)
    reply_window_days: int = 0
    # A patient may write to a professional who wrote to them, not only reply (policy.py).
    new_message_to_professionals: bool = True
    max_header_size: int = 64 * 1024
    reject_dkim_failures: bool = False
    relay_expire_days: int = 5
    # The return path of patients' e-mail notices: DSNs to its VERP addresses
    # (`local+<notice>@domain`) are read, not delivered ("" : none).
    notify_return_path: str = ""
    # The accounts' limits: a local recipient already full is refused at RCPT (quotas.py)
    quota: Quota = field(default_factory=Quota)

    @property
    def local_domains(self) -> tuple[str, ...]:
        if self.host_patient_domain:
            return (*self.professional_domains, self.patient_domain)
        return self.professional_domains
