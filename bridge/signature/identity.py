"""Which certificates count as an approver's: SHA-256 fingerprints and subject DNs.

An identity rule is a string from the config:

* ``sha256:<hex>`` — the SHA-256 of the certificate's DER, 64 hex digits in any
  case, colons and spaces allowed (``AB:12:…`` as certificate viewers show it).
  It names exactly one certificate, so a renewed certificate needs a new entry.
* ``subject:<DN>`` — an RFC 4514 distinguished name (most specific first,
  ``CN=Петренко Н.П.,O=ООО Ромашка,C=RU``; commas inside values escaped as
  ``\\,``). It matches a certificate whose subject has exactly the same
  attributes: the same multiset of (attribute type, value), in any order, types
  compared by OID, values compared with surrounding whitespace removed, inner
  runs of whitespace collapsed to one space and case folded. Nothing more and
  nothing less: a DN that leaves out SNILS does not match a subject that has
  one, so a short rule cannot match a namesake by accident. Besides RFC 4514's
  names (CN, O, OU, L, ST, C, STREET, DC, UID) these are accepted, in any case:
  emailAddress/E, SN, GN/G, title/T, serialNumber, SNILS, OGRN, OGRNIP, INN,
  INNLE, or any attribute by dotted OID. `render_subject` writes a
  certificate's subject in this form, so the signer_subject of a verification
  result can be pasted into the config as is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

_SNILS = x509.ObjectIdentifier("1.2.643.100.3")
_OGRN = x509.ObjectIdentifier("1.2.643.100.1")
_OGRNIP = x509.ObjectIdentifier("1.2.643.100.5")
_INN = x509.ObjectIdentifier("1.2.643.3.131.1.1")  # individual's or legacy INN
_INNLE = x509.ObjectIdentifier("1.2.643.100.4")  # legal entity's INN

# How `render_subject` names attributes beyond RFC 4514's; the parser accepts these too.
_RENDER_NAMES = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.SERIAL_NUMBER: "serialNumber",
    _SNILS: "SNILS",
    _OGRN: "OGRN",
    _OGRNIP: "OGRNIP",
    _INN: "INN",
    _INNLE: "INNLE",
}


class _AttributeNames(Mapping[str, x509.ObjectIdentifier]):
    """Attribute type names for the DN parser, case-insensitive as RFC 4514 §3 wants."""

    def __init__(self, names: Mapping[str, x509.ObjectIdentifier]) -> None:
        self._names = {name.upper(): oid for name, oid in names.items()}

    def __getitem__(self, name: str) -> x509.ObjectIdentifier:
        return self._names[name.upper()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_PARSE_NAMES = _AttributeNames(
    {
        "CN": NameOID.COMMON_NAME,
        "L": NameOID.LOCALITY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
        "STREET": NameOID.STREET_ADDRESS,
        "DC": NameOID.DOMAIN_COMPONENT,
        "UID": NameOID.USER_ID,
        "E": NameOID.EMAIL_ADDRESS,
        "G": NameOID.GIVEN_NAME,
        "T": NameOID.TITLE,
    }
    | {name: oid for oid, name in _RENDER_NAMES.items()}
)
_HEX_64 = re.compile(r"[0-9a-f]{64}")

SubjectAttributes = tuple[tuple[str, str], ...]


def render_subject(subject_der: bytes) -> str:
    """The RFC 4514 string of a DER-encoded X.509 Name, with the names above."""
    return x509.Name.from_bytes(subject_der).rfc4514_string(_RENDER_NAMES)


def subject_attributes(name: x509.Name) -> SubjectAttributes:
    """The name's attributes as sorted (OID, normalised value) pairs: order-free, comparable."""
    pairs = Counter(
        (attribute.oid.dotted_string, _normalise(attribute.value)) for attribute in name
    )
    return tuple(sorted(pairs.elements()))


def _normalise(value: str | bytes) -> str:
    text = value.hex() if isinstance(value, bytes) else value
    return " ".join(text.split()).casefold()


@dataclass(frozen=True, slots=True)
class IdentityRule:
    """One config entry: a certificate fingerprint or a subject DN."""

    text: str  # as written in the config, for messages
    fingerprint_sha256: str | None = None  # lowercase hex
    subject: SubjectAttributes | None = None

    def matches(self, fingerprint_sha256: str, subject: SubjectAttributes | None) -> bool:
        if self.fingerprint_sha256 is not None:
            return self.fingerprint_sha256 == fingerprint_sha256
        return subject is not None and self.subject == subject


def parse_identity_rule(text: str) -> IdentityRule:
    """Read ``sha256:<hex>`` or ``subject:<DN>``; ValueError says what is wrong."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in ("sha256", "subject"):
        raise ValueError(f"{text!r} must start with 'sha256:' or 'subject:'")
    if kind == "sha256":
        digits = "".join(value.replace(":", "").split()).lower()
        if not _HEX_64.fullmatch(digits):
            raise ValueError(f"{text!r} is not a SHA-256 fingerprint (64 hex digits)")
        return IdentityRule(text=text, fingerprint_sha256=digits)
    try:
        name = x509.Name.from_rfc4514_string(value.strip(), _PARSE_NAMES)
    except ValueError as bad:
        raise ValueError(
            f"{text!r} is not an RFC 4514 DN such as 'subject:CN=Петренко Н.П.,O=ООО Ромашка'"
            " (no spaces around ',' and '=', attribute names as listed in the docs)"
        ) from bad
    if not list(name):
        raise ValueError(f"{text!r} has an empty DN")
    return IdentityRule(text=text, subject=subject_attributes(name))
