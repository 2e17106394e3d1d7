"""Detached CMS signature verification: each check refuses what it should, and only that."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko_certvalidator.errors import AlgorithmNotSupported

from bridge.signature import (
    BackendRegistry,
    SignatureCheck,
    SignatureConfigError,
    SignatureVerifier,
    VerificationResult,
    load_verifier_config,
)
from bridge.signature.backends import (
    GOST_2012_256,
    GOST_2012_256_WITH_STREEBOG,
    STREEBOG_256,
    RegistrySignatureValidator,
)
from bridge.signature.identity import parse_identity_rule, subject_attributes

DOCUMENT = b"%PDF-1.7\nTKA 234/01-02\r\n\x00\xff binary bytes that must not be canonicalised\n"
NOW = datetime.now(UTC)
SNILS = x509.ObjectIdentifier("1.2.643.100.3")

PETRENKO = "@petrenko:corp.example"
IVANOV = "@ivanov:corp.example"

Sha2 = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Party:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


@dataclass
class Pki:
    root: Party
    intermediate: Party
    rsa_signer: Party  # Petrenko, mapped by fingerprint
    ec_signer: Party  # Petrenko, mapped by subject
    ed_signer: Party  # Petrenko, mapped by fingerprint
    colleague: Party  # Ivanov: valid, trusted, but not Petrenko
    expired: Party
    encipher_only: Party
    stranger: Party  # chains to a root nobody configured
    verifier: SignatureVerifier = field(init=False)

    def __post_init__(self) -> None:
        self.verifier = SignatureVerifier(
            [self.root.cert.public_bytes(serialization.Encoding.PEM)],
            {
                PETRENKO: [
                    "sha256:" + ":".join(f"{b:02X}" for b in bytes.fromhex(fp))
                    for fp in (
                        self.rsa_signer.fingerprint,
                        self.ed_signer.fingerprint,
                        self.expired.fingerprint,
                        self.encipher_only.fingerprint,
                        self.stranger.fingerprint,
                    )
                ]
                # Another order, case and spacing than the certificate: still the same DN.
                + ["subject:c=RU,o=ООО  Ромашка,SNILS=12345678901,CN=петренко николай петрович"],
                IVANOV: [f"sha256:{self.colleague.fingerprint}"],
            },
        )


def _name(common_name: str, *extra: x509.NameAttribute[str]) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ООО Ромашка"),
            *extra,
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Party | None,
    *,
    ca: bool = False,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=365),
    key_usage: str | None = "signing",
) -> Party:
    signing_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if key_usage is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=key_usage == "signing",
                content_commitment=key_usage == "signing",
                key_encipherment=key_usage == "encipherment",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Party(builder.sign(signing_key, algorithm), key)


def _rsa() -> rsa.RSAPrivateKey:
    # pyhanko-certvalidator refuses RSA keys under 2048 bits in a chain.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = _issue(_name("Corp Root CA"), _rsa(), None, ca=True, key_usage=None)
    intermediate = _issue(
        _name("Corp Issuing CA"), ec.generate_private_key(ec.SECP256R1()), root, ca=True
    )
    other_root = _issue(_name("Someone Else's CA"), _rsa(), None, ca=True, key_usage=None)
    return Pki(
        root=root,
        intermediate=intermediate,
        rsa_signer=_issue(
            _name("Петренко Н.П.", x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ОМТС")),
            _rsa(),
            intermediate,
        ),
        ec_signer=_issue(
            _name("Петренко Николай Петрович", x509.NameAttribute(SNILS, "12345678901")),
            ec.generate_private_key(ec.SECP384R1()),
            intermediate,
        ),
        ed_signer=_issue(
            _name("Петренко Н.П. (Ed25519)"), ed25519.Ed25519PrivateKey.generate(), intermediate
        ),
        colleague=_issue(_name("Иванов И.И."), _rsa(), intermediate),
        expired=_issue(
            _name("Петренко Н.П. (2023)"),
            _rsa(),
            intermediate,
            not_before=NOW - timedelta(days=400),
            not_after=NOW - timedelta(days=1),
        ),
        encipher_only=_issue(
            _name("Петренко Н.П. (TLS)"), _rsa(), intermediate, key_usage="encipherment"
        ),
        stranger=_issue(_name("Петренко Н.П. (self-made)"), _rsa(), other_root),
    )


def sign(
    signer: Party,
    pki: Pki,
    document: bytes = DOCUMENT,
    *,
    digest: Sha2 | None = None,
    encoding: serialization.Encoding = serialization.Encoding.DER,
    rsa_padding: padding.PSS | padding.PKCS1v15 | None = None,
    options: tuple[pkcs7.PKCS7Options, ...] = (),
) -> bytes:
    """A detached signature as a user's tool makes it, with the issuing CA included."""
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(document)
        .add_signer(
            signer.cert,
            signer.key,  # type: ignore[arg-type]
            digest or hashes.SHA256(),
            rsa_padding=rsa_padding,
        )
        .add_certificate(pki.intermediate.cert)
    )
    # Binary: sign the bytes as they are, not S/MIME-canonicalised text.
    return builder.sign(
        encoding, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary, *options]
    )


def build_cms(
    signer: Party,
    pki: Pki,
    sign_bytes: Callable[[bytes], bytes],
    *,
    digest_oid: str,
    signature_oid: str,
    message_digest: bytes,
    signing_time: datetime | None = None,
    include_certificates: bool = True,
) -> bytes:
    """A detached SignedData put together by hand, for what cryptography cannot sign."""
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [message_digest]}),
    ]
    if signing_time is not None:
        attributes.append(
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
            )
        )
    signed_attrs = cms.CMSAttributes(attributes)
    certificate = asn1_x509.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
    intermediate = asn1_x509.Certificate.load(
        pki.intermediate.cert.public_bytes(serialization.Encoding.DER)
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    }
                }
            ),
            "digest_algorithm": {"algorithm": digest_oid},
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_oid}),
            "signature": sign_bytes(signed_attrs.dump()),
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v1",
        "digest_algorithms": [{"algorithm": digest_oid}],
        "encap_content_info": {"content_type": "data"},
        "signer_infos": [signer_info],
    }
    if include_certificates:  # the field is optional in CMS
        signed_data["certificates"] = [certificate, intermediate]
    content_info = {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
    return bytes(cms.ContentInfo(content_info).dump())


def assert_refused(result: VerificationResult, check: SignatureCheck, *words: str) -> None:
    assert not result.ok, result
    assert result.failed_check is check, result.reason
    for word in words:
        assert word in result.reason


# Accepted


def test_rsa_signature_of_the_document_is_accepted_by_fingerprint(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert result.failed_check is None
    assert result.signer_fingerprint_sha256 == pki.rsa_signer.fingerprint
    assert result.signer_subject == "CN=Петренко Н.П.,OU=ОМТС,O=ООО Ромашка,C=RU"
    assert result.digest_algorithm == "sha256"
    assert result.signature_algorithm in {"rsassa_pkcs1v15", "sha256_rsa"}
    assert result.signing_time is not None
    assert abs(result.signing_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert "SHA-256 fingerprint" in result.reason
    assert "revocation not checked" in result.reason


def test_ec_signature_is_accepted_by_subject(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.ec_signer, pki), DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert result.signer_subject == (
        "CN=Петренко Николай Петрович,SNILS=12345678901,O=ООО Ромашка,C=RU"
    )
    assert result.reason.endswith("by subject")


@pytest.mark.parametrize(
    ("digest", "name"),
    [(hashes.SHA256(), "sha256"), (hashes.SHA384(), "sha384"), (hashes.SHA512(), "sha512")],
)
def test_the_digest_named_by_the_cms_is_used(pki: Pki, digest: Sha2, name: str) -> None:
    result = pki.verifier.verify(sign(pki.ec_signer, pki, digest=digest), DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert result.digest_algorithm == name


def test_rsa_pss_signature_is_accepted(pki: Pki) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    result = pki.verifier.verify(sign(pki.rsa_signer, pki, rsa_padding=pss), DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert result.signature_algorithm == "rsassa_pss"


def test_ed25519_signature_is_accepted(pki: Pki) -> None:
    key = pki.ed_signer.key
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    signature = build_cms(
        pki.ed_signer,
        pki,
        key.sign,
        digest_oid="sha512",  # RFC 8419
        signature_oid="ed25519",
        message_digest=hashlib.sha512(DOCUMENT).digest(),
        signing_time=NOW,
    )

    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert result.signature_algorithm == "ed25519"


def test_pem_and_bare_base64_signature_files_are_accepted(pki: Pki) -> None:
    pem = sign(pki.rsa_signer, pki, encoding=serialization.Encoding.PEM)
    assert pem.startswith(b"-----BEGIN PKCS7-----")
    as_cms = pem.replace(b"PKCS7", b"CMS")
    bare = base64.encodebytes(sign(pki.rsa_signer, pki))

    for signature in (pem, as_cms, bare, b"\r\n" + pem + b"\r\n"):
        result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)
        assert result.ok, result.reason


def test_signature_without_signed_attributes_covers_the_document_itself(pki: Pki) -> None:
    bare = sign(pki.rsa_signer, pki, options=(pkcs7.PKCS7Options.NoAttributes,))

    accepted = pki.verifier.verify(bare, DOCUMENT, PETRENKO, now=NOW)
    refused = pki.verifier.verify(bare, DOCUMENT + b" ", PETRENKO, now=NOW)

    assert accepted.ok, accepted.reason
    assert accepted.signing_time == NOW  # no signingTime: checked at "now"
    assert_refused(refused, SignatureCheck.SIGNATURE, "over the document")


async def test_verify_works_inside_a_running_event_loop(pki: Pki) -> None:
    signature = sign(pki.rsa_signer, pki)

    assert pki.verifier.verify(signature, DOCUMENT, PETRENKO).ok
    assert (await pki.verifier.verify_async(signature, DOCUMENT, PETRENKO)).ok


def test_result_as_dict_is_json(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.rsa_signer, pki), b"other", PETRENKO)

    payload = json.loads(json.dumps(result.as_dict()))

    assert payload["ok"] is False
    assert payload["failed_check"] == "digest"
    assert payload["signer_fingerprint_sha256"] == pki.rsa_signer.fingerprint
    assert set(payload) == {
        "ok",
        "failed_check",
        "reason",
        "signer_subject",
        "signer_fingerprint_sha256",
        "signing_time",
        "digest_algorithm",
        "signature_algorithm",
    }


# Refused, one check at a time


def test_signature_of_other_bytes_fails_digest(pki: Pki) -> None:
    signature = sign(pki.rsa_signer, pki, b"a previous version of the document")

    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert_refused(
        result, SignatureCheck.DIGEST, "other bytes", hashlib.sha256(DOCUMENT).hexdigest()
    )


def test_tampered_signature_value_fails_signature(pki: Pki) -> None:
    signature = sign(pki.rsa_signer, pki)
    value = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]["signature"].native
    at = signature.index(value) + 10
    tampered = signature[:at] + bytes([signature[at] ^ 0x01]) + signature[at + 1 :]

    result = pki.verifier.verify(tampered, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.SIGNATURE, "does not verify", "public key")


def test_signed_attributes_changed_after_signing_fail_signature(pki: Pki) -> None:
    key = pki.rsa_signer.key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = build_cms(
        pki.rsa_signer,
        pki,
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        digest_oid="sha256",
        signature_oid="sha256_rsa",
        message_digest=hashlib.sha256(DOCUMENT).digest(),
        signing_time=NOW.replace(microsecond=0),
    )
    stamp = NOW.strftime("%y%m%d%H%M%S").encode()
    backdated = signature.replace(
        stamp, (NOW - timedelta(days=1)).strftime("%y%m%d%H%M%S").encode()
    )
    assert backdated != signature

    assert pki.verifier.verify(signature, DOCUMENT, PETRENKO).ok
    assert_refused(pki.verifier.verify(backdated, DOCUMENT, PETRENKO), SignatureCheck.SIGNATURE)


def test_expired_certificate_fails_certificate_validity(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.expired, pki), DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.CERTIFICATE_VALIDITY, "signingTime attribute")


def test_certificate_not_yet_valid_at_verification_time_fails_certificate_validity(
    pki: Pki,
) -> None:
    bare = sign(pki.rsa_signer, pki, options=(pkcs7.PKCS7Options.NoAttributes,))

    result = pki.verifier.verify(bare, DOCUMENT, PETRENKO, now=NOW - timedelta(days=30))

    assert_refused(result, SignatureCheck.CERTIFICATE_VALIDITY, "time of verification")


def test_signing_time_in_the_future_fails_certificate_validity(pki: Pki) -> None:
    key = pki.rsa_signer.key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = build_cms(
        pki.rsa_signer,
        pki,
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        digest_oid="sha256",
        signature_oid="sha256_rsa",
        message_digest=hashlib.sha256(DOCUMENT).digest(),
        signing_time=NOW + timedelta(days=2),
    )

    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.CERTIFICATE_VALIDITY, "in the future")


def test_certificate_of_an_unconfigured_ca_fails_chain(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.stranger, pki), DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.CHAIN, "trust anchor")


def test_no_trust_anchors_fails_chain(pki: Pki) -> None:
    verifier = SignatureVerifier([], {PETRENKO: [f"sha256:{pki.rsa_signer.fingerprint}"]})

    result = verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.CHAIN, "no trust anchors")


def test_intermediate_anchor_alone_is_enough(pki: Pki) -> None:
    verifier = SignatureVerifier(
        [pki.intermediate.cert.public_bytes(serialization.Encoding.DER)],
        {PETRENKO: [f"sha256:{pki.rsa_signer.fingerprint}"]},
    )

    assert verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, PETRENKO).ok


def test_certificate_without_signing_key_usage_fails_key_usage(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.encipher_only, pki), DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.KEY_USAGE, "keyEncipherment", "digitalSignature")


def test_colleagues_valid_certificate_fails_identity(pki: Pki) -> None:
    signature = sign(pki.colleague, pki)

    assert pki.verifier.verify(signature, DOCUMENT, IVANOV).ok
    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)
    assert_refused(result, SignatureCheck.IDENTITY, PETRENKO, pki.colleague.fingerprint)


def test_approver_without_configured_certificates_fails_identity(pki: Pki) -> None:
    result = pki.verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, "@nobody:corp.example")

    assert_refused(result, SignatureCheck.IDENTITY, "no certificate is configured")


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello, this is not a signature", "neither DER, PEM nor base64"),
        (b"\x30\x82\xff\xff\x01", "well-formed"),
        (b"\x30\x03\x02\x01\x01", "well-formed"),
        (b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", "CERTIFICATE"),
        (b"-----BEGIN PKCS7-----\n!!!\n-----END PKCS7-----\n", "well-formed"),
    ],
)
def test_garbage_fails_parse(pki: Pki, signature: bytes, words: str) -> None:
    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.PARSE, words)


def test_truncated_signature_file_fails_parse(pki: Pki) -> None:
    signature = sign(pki.rsa_signer, pki)

    result = pki.verifier.verify(signature[: len(signature) // 2], DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.PARSE)


def test_attached_signature_fails_parse(pki: Pki) -> None:
    attached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DOCUMENT)
        .add_signer(pki.ec_signer.cert, pki.ec_signer.key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )

    result = pki.verifier.verify(attached, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.PARSE, "not detached")


def test_two_signers_fail_parse(pki: Pki) -> None:
    cosigned = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DOCUMENT)
        .add_signer(pki.ec_signer.cert, pki.ec_signer.key, hashes.SHA256())  # type: ignore[arg-type]
        .add_signer(pki.rsa_signer.cert, pki.rsa_signer.key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
    )

    result = pki.verifier.verify(cosigned, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.PARSE, "2 signers")


def test_signer_certificate_missing_from_the_file_fails_parse(pki: Pki) -> None:
    key = pki.rsa_signer.key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = build_cms(
        pki.rsa_signer,
        pki,
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        digest_oid="sha256",
        signature_oid="sha256_rsa",
        message_digest=hashlib.sha256(DOCUMENT).digest(),
        include_certificates=False,
    )

    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.PARSE, "certificate is not included")


# GOST: declared, refused by name until a backend is plugged in


def _gost_signature(pki: Pki) -> bytes:
    return build_cms(
        pki.rsa_signer,
        pki,
        lambda _data: bytes(64),
        digest_oid=STREEBOG_256,
        signature_oid=GOST_2012_256,
        message_digest=hashlib.sha256(DOCUMENT).digest(),  # what the fake Streebog computes
        signing_time=NOW,
    )


def test_gost_signature_is_refused_as_unsupported(pki: Pki) -> None:
    result = pki.verifier.verify(_gost_signature(pki), DOCUMENT, PETRENKO)

    assert_refused(
        result,
        SignatureCheck.SIGNATURE,
        "GOST R 34.10-2012",
        GOST_2012_256,
        STREEBOG_256,
        "no backend is installed",
    )
    assert result.signature_algorithm == GOST_2012_256


def test_a_registered_gost_backend_is_used(pki: Pki) -> None:
    calls: list[dict[str, Any]] = []

    class FakeStreebog:
        name = "fake Streebog-256"

        def digest(self, data: bytes) -> bytes:
            return hashlib.sha256(data).digest()

    class FakeGost:
        name = "fake GOST R 34.10-2012"

        def verify(self, **arguments: Any) -> None:
            calls.append(arguments)

    registry = BackendRegistry.standard()
    registry.register_digest(STREEBOG_256, FakeStreebog())
    registry.register_signature(GOST_2012_256, FakeGost())
    verifier = SignatureVerifier(
        [pki.root.cert.public_bytes(serialization.Encoding.PEM)],
        {PETRENKO: [f"sha256:{pki.rsa_signer.fingerprint}"]},
        backends=registry,
    )

    result = verifier.verify(_gost_signature(pki), DOCUMENT, PETRENKO)

    assert result.ok, result.reason
    assert "fake GOST R 34.10-2012" in result.reason
    assert [call["digest_algorithm"] for call in calls] == [STREEBOG_256]


def test_chain_validation_refuses_gost_certificate_signatures_by_name(pki: Pki) -> None:
    # pyhanko-certvalidator checks certificate signatures through the registry, so a
    # GOST-signed CA chain is refused by name, and a plugged-in backend would check it.
    validator = RegistrySignatureValidator(BackendRegistry.standard())
    public_key = asn1_x509.Certificate.load(
        pki.rsa_signer.cert.public_bytes(serialization.Encoding.DER)
    ).public_key

    with pytest.raises(
        AlgorithmNotSupported, match=r"GOST R 34\.10-2012.*1\.2\.643\.7\.1\.1\.3\.2"
    ):
        validator.validate_signature(
            bytes(64),
            b"tbsCertificate",
            public_key,
            algos.SignedDigestAlgorithm({"algorithm": GOST_2012_256_WITH_STREEBOG}),
        )


def test_weak_digest_is_refused_as_unsupported(pki: Pki) -> None:
    key = pki.rsa_signer.key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = build_cms(
        pki.rsa_signer,
        pki,
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA1()),  # noqa: S303
        digest_oid="sha1",
        signature_oid="sha1_rsa",
        message_digest=hashlib.sha1(DOCUMENT).digest(),  # noqa: S324
        signing_time=NOW,
    )

    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.SIGNATURE, "1.2.840.113549.1.1.5", "not supported")


# Robustness


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(pki: Pki, signature: bytes) -> None:
    result = pki.verifier.verify(signature, DOCUMENT, PETRENKO)

    assert not result.ok
    assert result.failed_check is not None
    assert result.reason


@pytest.fixture(scope="module")
def valid_signature(pki: Pki) -> bytes:
    return sign(pki.rsa_signer, pki)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_corrupted_signature_files_never_raise(
    pki: Pki, valid_signature: bytes, data: st.DataObject
) -> None:
    signature = bytearray(valid_signature)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(signature) - 1))
        signature[at] = data.draw(st.integers(0, 255))

    result = pki.verifier.verify(bytes(signature), DOCUMENT, PETRENKO)

    # Some bytes are outside what is signed (e.g. SignedData.digestAlgorithms), so a
    # changed file may still verify; what matters is an answer, never an exception.
    assert isinstance(result, VerificationResult)
    assert result.ok or (result.failed_check is not None and result.reason)


# Identity rules and config


def test_subject_rule_needs_the_whole_subject() -> None:
    rule = parse_identity_rule("subject:CN=Петренко Н.П.,O=ООО Ромашка")
    exact = x509.Name.from_rfc4514_string("CN=петренко  н.п.,O=ООО Ромашка")
    longer = x509.Name.from_rfc4514_string("CN=Петренко Н.П.,OU=ОМТС,O=ООО Ромашка")

    assert rule.matches("0" * 64, subject_attributes(exact))
    assert not rule.matches("0" * 64, subject_attributes(longer))
    assert not rule.matches("0" * 64, None)


@pytest.mark.parametrize(
    "rule",
    [
        "AB12",
        "sha256:1234",
        "md5:" + "0" * 32,
        "subject:",
        "subject:CN = x, O = y",
        "subject:XX=1",
    ],
)
def test_malformed_identity_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError, match=r"sha256|RFC 4514|empty"):
        parse_identity_rule(rule)


def test_load_verifier_config_reads_anchors_relative_to_the_config(
    pki: Pki, tmp_path: Path
) -> None:
    (tmp_path / "ca").mkdir()
    bundle = pki.root.cert.public_bytes(
        serialization.Encoding.PEM
    ) + pki.intermediate.cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "ca" / "bundle.pem").write_bytes(bundle)

    verifier = load_verifier_config(
        {
            "trust_anchors": ["ca/bundle.pem"],
            "identities": {PETRENKO: [f"sha256:{pki.rsa_signer.fingerprint.upper()}"]},
        },
        base_dir=tmp_path,
    )

    assert verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, PETRENKO).ok


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"trust_anchors": ["missing.pem"]}, "signatures.trust_anchors[0]"),
        ({"trust_anchors": ["garbage.pem"]}, "signatures.trust_anchors[0]"),
        ({"trust_anchors": "root.pem"}, "signatures.trust_anchors"),
        ({"identities": ["@a:b"]}, "signatures.identities"),
        ({"identities": {"petrenko": ["sha256:" + "0" * 64]}}, "signatures.identities[petrenko]"),
        ({"identities": {PETRENKO: "sha256:" + "0" * 64}}, f"signatures.identities[{PETRENKO}]"),
        ({"identities": {PETRENKO: ["sha256:00"]}}, f"signatures.identities[{PETRENKO}][0]"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, section: dict[str, Any], key: str) -> None:
    (tmp_path / "garbage.pem").write_bytes(b"not a certificate")

    with pytest.raises(SignatureConfigError) as refused:
        load_verifier_config(section, base_dir=tmp_path)

    assert refused.value.key == key


def test_missing_section_refuses_every_signature(pki: Pki) -> None:
    verifier = load_verifier_config(None)

    result = verifier.verify(sign(pki.rsa_signer, pki), DOCUMENT, PETRENKO)

    assert_refused(result, SignatureCheck.CHAIN, "no trust anchors")
