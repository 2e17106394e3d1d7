"""Verifies an approver's detached CMS signature of an approval document.

An approval with ``require_signature: true`` (DESIGN §4.1) is decided only with a
signature file (.p7s/.sig: DER, PEM ``PKCS7``/``CMS``, or bare base64) of the
exact document bytes. `SignatureVerifier.verify` runs the checks of
`SignatureCheck` in order and stops at the first that fails; its result names
that check and says why in English. A document is signed only when every
check passes.

Proposed config (the integrator adds it to config.example.yaml)::

    signatures:
      # CA certificates that signer certificates must chain to: PEM (a file may
      # hold several) or DER. Relative paths are relative to the config file.
      trust_anchors:
        - ca/corp-root.pem
      # Approver MXID -> the certificates that count as theirs (see identity.py):
      # "sha256:<hex of the certificate DER's SHA-256>" or "subject:<RFC 4514 DN>".
      identities:
        "@petrenko:corp.example":
          - "sha256:3F:9A:…"
          - "subject:CN=Петренко Николай Петрович,SNILS=12345678901,O=ООО Ромашка,C=RU"

Limitations, on purpose or for now:

* Revocation is not checked: the bridge is offline, so the chain is validated
  with fetching off and revocation "soft-fail" (no CRL/OCSP means no objection).
  A revoked certificate is accepted; the success reason says revocation was
  not checked.
* The signing time is what the signer claims (signingTime attribute, else the
  time of verification); there is no timestamp token (CAdES-T) check. A
  claimed time more than five minutes in the future is refused.
* Exactly one SignerInfo is expected (one signature per approver); co-signed
  files with several signers are refused at parse.
* GOST R 34.10-2012 / 34.11-2012 are refused until a backend is registered
  (see backends.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from asn1crypto import cms, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as CryptographyUnsupportedAlgorithm
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import AlgorithmNotSupported, PathError, ValidationError
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from bridge.signature.backends import (
    BackendRegistry,
    DigestBackend,
    RegistrySignatureValidator,
    SignatureBackend,
    UnsupportedAlgorithm,
)
from bridge.signature.identity import (
    IdentityRule,
    SubjectAttributes,
    parse_identity_rule,
    render_subject,
    subject_attributes,
)

logger = logging.getLogger(__name__)

_CLOCK_SKEW = timedelta(minutes=5)
_SIGNING_KEY_USAGES = frozenset({"digital_signature", "non_repudiation"})
_PEM_LABELS = frozenset({"PKCS7", "CMS"})
_DATA_CONTENT_TYPE = "1.2.840.113549.1.7.1"
# pyhanko's default: no MD5/SHA-1, RSA keys of 2048 bits or more; the chain check
# applies the same policy to the certificates.
_ALGORITHM_POLICY = DisallowWeakAlgorithmsPolicy()  # type: ignore[no-untyped-call]


class SignatureCheck(Enum):
    """The checks, in the order they run."""

    PARSE = "parse"  # a detached CMS SignedData with one signer and its certificate
    DIGEST = "digest"  # messageDigest equals the digest of the document bytes
    SIGNATURE = "signature"  # the signature over the signed attributes verifies
    CERTIFICATE_VALIDITY = "certificate_validity"  # signer cert valid at signing time
    CHAIN = "chain"  # signer cert chains to a configured trust anchor
    KEY_USAGE = "key_usage"  # KeyUsage, if present, allows signing
    IDENTITY = "identity"  # the certificate is configured as the approver's


@dataclass(frozen=True, slots=True)
class VerificationResult:
    ok: bool
    failed_check: SignatureCheck | None
    reason: str
    signer_subject: str | None = None  # RFC 4514, as identity rules write it
    signer_fingerprint_sha256: str | None = None  # lowercase hex of the cert DER's SHA-256
    signing_time: datetime | None = None  # as used for the validity and chain checks
    digest_algorithm: str | None = None  # asn1crypto's name ("sha256") or the dotted OID
    signature_algorithm: str | None = None  # likewise ("sha256_rsa", "rsassa_pss", …)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for callbacks (`approval.step_decided`) and the API."""
        return {
            "ok": self.ok,
            "failed_check": None if self.failed_check is None else self.failed_check.value,
            "reason": self.reason,
            "signer_subject": self.signer_subject,
            "signer_fingerprint_sha256": self.signer_fingerprint_sha256,
            "signing_time": None if self.signing_time is None else self.signing_time.isoformat(),
            "digest_algorithm": self.digest_algorithm,
            "signature_algorithm": self.signature_algorithm,
        }


class SignatureConfigError(ValueError):
    """A bad `signatures` config entry; `key` is its path, e.g. ``signatures.trust_anchors[0]``."""

    def __init__(self, key: str, error: str) -> None:
        super().__init__(f"{key}: {error}")
        self.key = key
        self.error = error


class _Refused(Exception):
    """A check failed; the message is the reason given to the approver."""


@dataclass(slots=True)
class _Signer:
    """What parsing found in the signature file."""

    signer_info: Any  # cms.SignerInfo
    certificate: asn1_x509.Certificate
    certificates: list[asn1_x509.Certificate]  # all in the file, for chain building
    signed_attributes: bytes | None  # DER as signed (SET OF), None if the file has none
    message_digest: bytes | None
    claimed_signing_time: datetime | None


@dataclass(slots=True)
class _Progress:
    """The check under way and what is known so far; a refusal still reports the latter."""

    check: SignatureCheck = SignatureCheck.PARSE
    signer_subject: str | None = None
    signer_fingerprint_sha256: str | None = None
    signing_time: datetime | None = None
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None

    def result(self, reason: str, *, ok: bool = False) -> VerificationResult:
        return VerificationResult(
            ok=ok,
            failed_check=None if ok else self.check,
            reason=reason,
            signer_subject=self.signer_subject,
            signer_fingerprint_sha256=self.signer_fingerprint_sha256,
            signing_time=self.signing_time,
            digest_algorithm=self.digest_algorithm,
            signature_algorithm=self.signature_algorithm,
        )


class SignatureVerifier:
    """Checks detached CMS signatures against configured trust anchors and identities."""

    def __init__(
        self,
        trust_anchors: Sequence[bytes],
        identities: Mapping[str, Sequence[str]],
        backends: BackendRegistry | None = None,
    ) -> None:
        """`trust_anchors`: PEM or DER certificates; `identities`: MXID -> identity rules.

        Raises ValueError for an unreadable anchor or rule: configuration errors
        surface at start, not at the first approval.
        """
        self._trust_anchors = [cert for data in trust_anchors for cert in load_certificates(data)]
        self._identities: dict[str, tuple[IdentityRule, ...]] = {
            approver: tuple(parse_identity_rule(rule) for rule in rules)
            for approver, rules in identities.items()
        }
        self._backends = backends if backends is not None else BackendRegistry.standard()

    def verify(
        self, signature: bytes, document: bytes, approver: str, now: datetime | None = None
    ) -> VerificationResult:
        """Verify `signature` of `document` as `approver`'s; never raises for bad input.

        Chain validation (pyhanko-certvalidator) is a coroutine. Called inside a
        running event loop, this runs the checks on a worker thread and blocks the
        loop until they finish: async code should `await verify_async(...)`.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.verify_async(signature, document, approver, now))
        # asyncio.run cannot nest inside a running loop, so give it a thread of its own.
        with ThreadPoolExecutor(max_workers=1) as worker:
            return worker.submit(
                asyncio.run, self.verify_async(signature, document, approver, now)
            ).result()

    async def verify_async(
        self, signature: bytes, document: bytes, approver: str, now: datetime | None = None
    ) -> VerificationResult:
        """`verify` as a coroutine. `now` defaults to the current time; naive means UTC."""
        now = datetime.now(UTC) if now is None else _aware(now)
        progress = _Progress()
        try:
            signer = self._parse(signature, progress)
            digest_backend, signature_backend = self._backends_for(signer, progress)
            digest_name = self._check_digest(signer, document, digest_backend, progress)
            self._check_signature(signer, document, signature_backend, now, progress)
            signing_time_source = self._check_validity(signer, now, progress)
            anchor = await self._check_chain(signer, progress)
            self._check_key_usage(signer, progress)
            matched_by = self._check_identity(signer, approver, progress)
        except _Refused as refusal:
            return progress.result(str(refusal))
        except Exception as unexpected:
            # Hostile input can trip the ASN.1 and crypto libraries in ways no
            # check anticipates; it is still a refusal, never a crash or a pass.
            logger.warning("signature %s check broke", progress.check.value, exc_info=True)
            return progress.result(
                f"the {progress.check.value} check could not be completed: "
                f"{type(unexpected).__name__}: {unexpected}"
            )
        return progress.result(
            f"signed by {progress.signer_subject}: the document's {digest_name} matches, "
            f"the {signature_backend.name} signature verifies, the certificate is valid at "
            f"{_iso(progress.signing_time)} ({signing_time_source}) and chains to {anchor} "
            f"(revocation not checked), its key usage allows signing, and it is {approver}'s "
            f"by {matched_by}",
            ok=True,
        )

    def _parse(self, signature: bytes, progress: _Progress) -> _Signer:
        der = _decode_signature_file(signature)
        try:
            return self._parse_signed_data(der, progress)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as bad:
            # asn1crypto's complaint about malformed DER, e.g. "Insufficient data".
            raise _Refused(f"not a well-formed CMS SignedData: {bad}") from bad

    def _parse_signed_data(self, der: bytes, progress: _Progress) -> _Signer:
        content_info = cms.ContentInfo.load(der, strict=True)
        content_type = content_info["content_type"].native
        if content_type != "signed_data":
            raise _Refused(f"the CMS content is {content_type}, not SignedData")
        signed_data = content_info["content"]
        # asn1crypto parses lazily: touch what is used now so that malformed
        # bytes are a parse refusal and not a failure of some later check.
        encapsulated = signed_data["encap_content_info"]
        signer_infos = signed_data["signer_infos"]
        signer_infos.native  # noqa: B018
        if encapsulated["content"].native is not None:
            raise _Refused(
                "the signature is not detached: it embeds content; a detached signature "
                "of the document is required"
            )
        if encapsulated["content_type"].dotted != _DATA_CONTENT_TYPE:
            raise _Refused(f"the signed content type is {encapsulated['content_type'].native}")
        if len(signer_infos) != 1:
            raise _Refused(
                "the signature has no signer"
                if len(signer_infos) == 0
                else f"the signature has {len(signer_infos)} signers; one is expected"
            )
        signer_info = signer_infos[0]
        included_set = signed_data["certificates"]  # optional in CMS
        certificates = [
            choice.chosen
            for choice in ([] if included_set.native is None else included_set)
            if choice.name == "certificate"
        ]
        for included in certificates:
            included.native  # noqa: B018 - chain building reads them all
        certificate = _find_signer_certificate(signer_info["sid"], certificates)
        progress.signer_fingerprint_sha256 = hashlib.sha256(certificate.dump()).hexdigest()
        progress.signer_subject = _subject_text(certificate)
        progress.digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
        progress.signature_algorithm = signer_info["signature_algorithm"]["algorithm"].native
        return _read_signed_attributes(signer_info, certificate, certificates)

    def _backends_for(
        self, signer: _Signer, progress: _Progress
    ) -> tuple[DigestBackend, SignatureBackend]:
        # An algorithm without a backend fails the *signature* check: the bridge
        # cannot verify anything, and "digest" would tell the approver they
        # signed other bytes, which nobody knows.
        progress.check = SignatureCheck.SIGNATURE
        signature_oid = signer.signer_info["signature_algorithm"]["algorithm"].dotted
        digest_oid = signer.signer_info["digest_algorithm"]["algorithm"].dotted
        missing: list[str] = []
        try:
            signature_backend = self._backends.signature(signature_oid)
        except UnsupportedAlgorithm as unsupported:
            missing.append(str(unsupported))
        try:
            digest_backend = self._backends.digest(digest_oid)
        except UnsupportedAlgorithm as unsupported:
            missing.append(str(unsupported))
        if missing:
            raise _Refused("; ".join(missing))
        return digest_backend, signature_backend

    def _check_digest(
        self, signer: _Signer, document: bytes, backend: DigestBackend, progress: _Progress
    ) -> str:
        progress.check = SignatureCheck.DIGEST
        if signer.message_digest is None:
            # Without signed attributes the signature covers the document itself,
            # so the signature check is what compares it.
            return backend.name
        document_digest = backend.digest(document)
        if not hmac.compare_digest(document_digest, signer.message_digest):
            raise _Refused(
                "the signature was made over other bytes than this document: the signed "
                f"{backend.name} is {signer.message_digest.hex()}, the document's is "
                f"{document_digest.hex()}"
            )
        return backend.name

    def _check_signature(
        self,
        signer: _Signer,
        document: bytes,
        backend: SignatureBackend,
        now: datetime,
        progress: _Progress,
    ) -> None:
        progress.check = SignatureCheck.SIGNATURE
        signer_info = signer.signer_info
        algorithm = signer_info["signature_algorithm"]
        public_key = signer.certificate.public_key
        allowed = _ALGORITHM_POLICY.signature_algorithm_allowed(algorithm, now, public_key)
        if not allowed.allowed:
            raise _Refused(f"{backend.name} is not acceptable: {allowed.failure_reason}")
        try:
            backend.verify(
                signature=signer_info["signature"].native,
                signed_data=(
                    document if signer.signed_attributes is None else signer.signed_attributes
                ),
                public_key_info=public_key,
                signature_algorithm=algorithm,
                digest_algorithm=signer_info["digest_algorithm"]["algorithm"].dotted,
            )
        except (UnsupportedAlgorithm, AlgorithmNotSupported) as unsupported:
            raise _Refused(str(unsupported)) from unsupported
        except InvalidSignature as invalid:
            over = (
                "signed attributes"
                if signer.signed_attributes is not None
                # Then a different document and a broken signature look the same.
                else "document (the file has no signed attributes, so the document may "
                "differ from the one signed)"
            )
            raise _Refused(
                f"the {backend.name} signature over the {over} does not verify with the "
                "signer certificate's public key"
            ) from invalid
        except CryptographyUnsupportedAlgorithm as unusable:
            raise _Refused(
                f"the signer certificate's public key is unusable: {unusable}"
            ) from None
        except (ValueError, TypeError) as broken:
            raise _Refused(f"the {backend.name} signature cannot be checked: {broken}") from broken

    def _check_validity(self, signer: _Signer, now: datetime, progress: _Progress) -> str:
        progress.check = SignatureCheck.CERTIFICATE_VALIDITY
        claimed = signer.claimed_signing_time
        if claimed is not None and claimed > now + _CLOCK_SKEW:
            raise _Refused(f"the signingTime attribute ({_iso(claimed)}) is in the future")
        signing_time = now if claimed is None else claimed
        progress.signing_time = signing_time
        source = "time of verification" if claimed is None else "signingTime attribute"
        not_before = signer.certificate.not_valid_before
        not_after = signer.certificate.not_valid_after
        if not not_before <= signing_time <= not_after:
            raise _Refused(
                f"the signer certificate is valid from {_iso(not_before)} to {_iso(not_after)}, "
                f"not at the signing time {_iso(signing_time)} ({source})"
            )
        return source

    async def _check_chain(self, signer: _Signer, progress: _Progress) -> str:
        progress.check = SignatureCheck.CHAIN
        if not self._trust_anchors:
            raise _Refused("no trust anchors are configured (signatures.trust_anchors)")
        # Offline on purpose: no fetching, and revocation "soft-fail" means that
        # missing CRL/OCSP data is no objection (see the module docstring).
        context = ValidationContext(
            trust_roots=list(self._trust_anchors),
            other_certs=signer.certificates,
            moment=progress.signing_time,
            allow_fetching=False,
            revocation_mode="soft-fail",
            signature_validator=RegistrySignatureValidator(self._backends),
        )
        validator = CertificateValidator(signer.certificate, validation_context=context)
        try:
            path = await validator.async_validate_path()
        except (PathError, ValidationError) as broken:
            raise _Refused(
                "the signer certificate does not chain to a configured trust anchor at "
                f"{_iso(progress.signing_time)}: {broken}"
            ) from broken
        return _name_text(path.trust_anchor.authority.name)

    def _check_key_usage(self, signer: _Signer, progress: _Progress) -> None:
        progress.check = SignatureCheck.KEY_USAGE
        key_usage = signer.certificate.key_usage_value
        if key_usage is None:
            return
        usages = set(key_usage.native)
        if not usages & _SIGNING_KEY_USAGES:
            listed = ", ".join(sorted(_camel_case(usage) for usage in usages)) or "nothing"
            raise _Refused(
                f"the signer certificate's KeyUsage allows {listed}, "
                "not digitalSignature or nonRepudiation"
            )

    def _check_identity(self, signer: _Signer, approver: str, progress: _Progress) -> str:
        progress.check = SignatureCheck.IDENTITY
        rules = self._identities.get(approver, ())
        if not rules:
            raise _Refused(f"no certificate is configured for {approver} (signatures.identities)")
        fingerprint = hashlib.sha256(signer.certificate.dump()).hexdigest()
        subject = _subject_attributes(signer.certificate)
        for rule in rules:
            if rule.matches(fingerprint, subject):
                return "SHA-256 fingerprint" if rule.fingerprint_sha256 else "subject"
        raise _Refused(
            f"the signer certificate ({progress.signer_subject}, SHA-256 {fingerprint}) "
            f"is not configured as {approver}'s (signatures.identities)"
        )


def load_verifier_config(
    section: Mapping[str, Any] | None,
    *,
    base_dir: Path = Path(),
    backends: BackendRegistry | None = None,
) -> SignatureVerifier:
    """Build the verifier from the `signatures` config section (shape in the module docstring).

    A missing section gives a verifier that refuses every signature at the chain
    check. Raises `SignatureConfigError` naming the bad key.
    """
    section = section or {}
    anchor_paths = section.get("trust_anchors") or []
    identities = section.get("identities") or {}
    if not isinstance(anchor_paths, list):
        raise SignatureConfigError("signatures.trust_anchors", "must be a list of file paths")
    if not isinstance(identities, Mapping):
        raise SignatureConfigError("signatures.identities", "must map MXIDs to lists of rules")
    anchors: list[bytes] = []
    for index, raw_path in enumerate(anchor_paths):
        key = f"signatures.trust_anchors[{index}]"
        path = base_dir / str(raw_path)
        try:
            data = path.read_bytes()
            load_certificates(data)
        except OSError as unreadable:
            raise SignatureConfigError(key, f"cannot read {path}: {unreadable.strerror}") from None
        except ValueError as bad:
            raise SignatureConfigError(key, f"{path}: {bad}") from None
        anchors.append(data)
    for approver, rules in identities.items():
        key = f"signatures.identities[{approver}]"
        if not (isinstance(approver, str) and approver.startswith("@") and ":" in approver):
            raise SignatureConfigError(key, "must be a full Matrix ID (@user:server)")
        if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
            raise SignatureConfigError(key, "must be a list of 'sha256:…'/'subject:…' strings")
        for index, rule in enumerate(rules):
            try:
                parse_identity_rule(rule)
            except ValueError as bad:
                raise SignatureConfigError(f"{key}[{index}]", str(bad)) from None
    return SignatureVerifier(anchors, identities, backends=backends)


def load_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    """Certificates from PEM (one or more CERTIFICATE blocks) or DER; ValueError if none."""
    if pem.detect(data):
        blocks = list(pem.unarmor(data, multiple=True))
        ders = [der for label, _headers, der in blocks if label == "CERTIFICATE"]
        if len(ders) != len(blocks):
            raise ValueError("a PEM block is not a CERTIFICATE")
    else:
        ders = [data]
    if not ders:
        raise ValueError("no certificate found")
    certificates = []
    for der in ders:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - parse it all now, so a bad file fails at start
        certificates.append(certificate)
    return certificates


def _decode_signature_file(data: bytes) -> bytes:
    if data[:1] == b"\x30":  # a DER SEQUENCE; never strip it, trailing bytes are content
        return data
    text = data.strip()
    if not text:
        raise _Refused("the signature file is empty")
    if text.startswith(b"-----BEGIN"):
        try:
            label, _headers, der = pem.unarmor(text)
        except ValueError as bad:
            raise _Refused(f"the PEM armour is broken: {bad}") from bad
        if label not in _PEM_LABELS:
            raise _Refused(f"the PEM block is {label!r}, not PKCS7 or CMS")
        return bytes(der)
    # CryptoPro and other tools also save signatures as base64 without armour.
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("not a CMS signature: neither DER, PEM nor base64") from None


def _find_signer_certificate(
    sid: Any, certificates: list[asn1_x509.Certificate]
) -> asn1_x509.Certificate:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        found = [c for c in certificates if c.issuer == issuer and c.serial_number == serial]
    else:
        key_id = sid.chosen.native
        found = [c for c in certificates if c.key_identifier == key_id]
    if not found:
        raise _Refused("the signer's certificate is not included in the signature file")
    return found[0]


def _read_signed_attributes(
    signer_info: Any, certificate: asn1_x509.Certificate, certificates: list[asn1_x509.Certificate]
) -> _Signer:
    attributes = signer_info["signed_attrs"]
    if attributes.native is None:
        return _Signer(signer_info, certificate, certificates, None, None, None)
    values: dict[str, list[Any]] = {}
    for attribute in attributes:
        values.setdefault(attribute["type"].native, []).extend(attribute["values"])
    for required in ("content_type", "message_digest"):
        if len(values.get(required, [])) != 1:
            raise _Refused(f"the signed attributes need exactly one {required} value")
    if values["content_type"][0].dotted != _DATA_CONTENT_TYPE:
        raise _Refused("the content_type attribute does not match the signed content")
    signing_times = values.get("signing_time", [])
    if len(signing_times) > 1:
        raise _Refused("the signed attributes have more than one signing_time")
    return _Signer(
        signer_info,
        certificate,
        certificates,
        # The signature covers the attributes DER-encoded as a SET OF, not with
        # the [0] IMPLICIT tag they carry inside SignerInfo (RFC 5652 §5.4).
        b"\x31" + attributes.dump()[1:],
        bytes(values["message_digest"][0].native),
        _aware(signing_times[0].native) if signing_times else None,
    )


def _subject_text(certificate: asn1_x509.Certificate) -> str:
    return _name_text(certificate.subject)


def _name_text(name: asn1_x509.Name) -> str:
    try:
        return render_subject(name.dump())
    except ValueError:
        # cryptography refuses some odd encodings asn1crypto accepts; still name it.
        return str(name.human_friendly)


def _subject_attributes(certificate: asn1_x509.Certificate) -> SubjectAttributes | None:
    try:
        return subject_attributes(x509.Name.from_bytes(certificate.subject.dump()))
    except ValueError:
        return None  # then only a fingerprint rule can match


def _camel_case(snake: str) -> str:
    first, *rest = snake.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str:
    return "unknown" if moment is None else moment.astimezone(UTC).isoformat()
