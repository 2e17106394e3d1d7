"""Cryptographic backends for signature checks, looked up by algorithm OID.

The verifier never names an algorithm itself: it asks a `BackendRegistry` for the
digest named by the CMS `digestAlgorithm` and the signature named by
`signatureAlgorithm`. The standard registry covers SHA-256/384/512 and RSA
(PKCS#1 v1.5, PSS), ECDSA and Ed25519 through `cryptography` (via
pyhanko-certvalidator's signature validator). GOST R 34.11-2012 (Streebog) and
GOST R 34.10-2012 are *declared* but have no implementation: a package that
provides them registers its backends under the same OIDs, e.g.::

    registry = BackendRegistry.standard()
    registry.register_digest(STREEBOG_256, MyStreebog256())
    registry.register_signature(GOST_2012_256, MyGost2012Verifier())
    SignatureVerifier(anchors, identities, backends=registry)

The registry also checks certificate signatures during chain validation
(`RegistrySignatureValidator`), so a GOST backend covers GOST-signed CA chains too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from asn1crypto import algos, keys
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
    SignatureValidator,
)

# GOST OIDs (TC 26, R 1323565.1.024-2019 and RFC 9215), used to name them in refusals.
STREEBOG_256 = "1.2.643.7.1.1.2.2"
STREEBOG_512 = "1.2.643.7.1.1.2.3"
GOST_2012_256 = "1.2.643.7.1.1.1.1"  # public key OID, what CryptoPro puts in SignerInfo
GOST_2012_512 = "1.2.643.7.1.1.1.2"
GOST_2012_256_WITH_STREEBOG = "1.2.643.7.1.1.3.2"  # what CAs put in certificates
GOST_2012_512_WITH_STREEBOG = "1.2.643.7.1.1.3.3"

_GOST_DIGESTS = {
    STREEBOG_256: "GOST R 34.11-2012 (Streebog, 256 bit)",
    STREEBOG_512: "GOST R 34.11-2012 (Streebog, 512 bit)",
    "1.2.643.2.2.9": "GOST R 34.11-94",
}
_GOST_SIGNATURES = {
    GOST_2012_256: "GOST R 34.10-2012 (256-bit key)",
    GOST_2012_512: "GOST R 34.10-2012 (512-bit key)",
    GOST_2012_256_WITH_STREEBOG: "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)",
    GOST_2012_512_WITH_STREEBOG: "GOST R 34.10-2012 with GOST R 34.11-2012 (512 bit)",
    "1.2.643.2.2.19": "GOST R 34.10-2001",
    "1.2.643.2.2.3": "GOST R 34.10-2001 with GOST R 34.11-94",
}

# What the standard backends accept. SHA-1 and MD5 are left out on purpose: a
# signature that relies on them is refused as unsupported rather than trusted.
_SHA2 = {
    "2.16.840.1.101.3.4.2.1": ("SHA-256", "sha256"),
    "2.16.840.1.101.3.4.2.2": ("SHA-384", "sha384"),
    "2.16.840.1.101.3.4.2.3": ("SHA-512", "sha512"),
}
_STANDARD_SIGNATURES = {
    "1.2.840.113549.1.1.1": "RSA PKCS#1 v1.5",  # rsaEncryption: hash from digestAlgorithm
    "1.2.840.113549.1.1.11": "RSA PKCS#1 v1.5 with SHA-256",
    "1.2.840.113549.1.1.12": "RSA PKCS#1 v1.5 with SHA-384",
    "1.2.840.113549.1.1.13": "RSA PKCS#1 v1.5 with SHA-512",
    "1.2.840.113549.1.1.10": "RSA-PSS",
    "1.2.840.10045.4.3.2": "ECDSA with SHA-256",
    "1.2.840.10045.4.3.3": "ECDSA with SHA-384",
    "1.2.840.10045.4.3.4": "ECDSA with SHA-512",
    "1.3.101.112": "Ed25519",
}
# asn1crypto's names: signature mechanism -> public key algorithms it can use.
_KEY_TYPES = {
    "rsassa_pkcs1v15": {"rsa"},
    "rsassa_pss": {"rsa", "rsassa_pss"},
    "ecdsa": {"ec"},
    "ed25519": {"ed25519"},
}


class UnsupportedAlgorithm(Exception):
    """No backend can check this algorithm; the message names it and its OID."""


class DigestBackend(Protocol):
    """Computes one digest algorithm."""

    @property
    def name(self) -> str: ...

    def digest(self, data: bytes) -> bytes: ...


class SignatureBackend(Protocol):
    """Verifies signatures of one family (looked up by the signature algorithm's OID)."""

    @property
    def name(self) -> str: ...

    def verify(
        self,
        *,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        digest_algorithm: str | None,
    ) -> None:
        """Return if `signature` over `signed_data` verifies, raise otherwise.

        `digest_algorithm` is the dotted OID of the CMS digestAlgorithm, for
        signature OIDs that do not name their hash (rsaEncryption, GOST key OIDs);
        None when checking a certificate's signature. Raise
        `cryptography.exceptions.InvalidSignature` for a bad signature and
        `UnsupportedAlgorithm` for a combination the backend cannot check.
        """
        ...


@dataclass(frozen=True, slots=True)
class HashlibDigest:
    name: str
    hashlib_name: str

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.hashlib_name, data).digest()


@dataclass(frozen=True, slots=True)
class CryptographySignature:
    """RSA, RSA-PSS, ECDSA and Ed25519 via pyhanko-certvalidator's use of `cryptography`."""

    name: str

    def verify(
        self,
        *,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        digest_algorithm: str | None,
    ) -> None:
        context = DEFAULT_VALIDATION_CONTEXT
        if digest_algorithm is not None:
            if digest_algorithm not in _SHA2:
                raise UnsupportedAlgorithm(
                    f"{self.name} with digest {describe_digest(digest_algorithm)} is not supported"
                )
            context = SignatureValidationContext(
                contextual_md_algorithm=_SHA2[digest_algorithm][1]
            )
        # pyhanko only asserts that the key fits the algorithm; say it properly.
        key_type = public_key_info.algorithm
        if key_type not in _KEY_TYPES[signature_algorithm.signature_algo]:
            raise UnsupportedAlgorithm(f"{self.name} cannot use a {key_type} public key")
        DefaultSignatureValidator().validate_signature(
            signature, signed_data, public_key_info, signature_algorithm, context
        )


@dataclass(frozen=True, slots=True)
class _Declared:
    """An algorithm the bridge knows by name but cannot compute (no backend installed)."""

    name: str


class BackendRegistry:
    """Digest and signature backends keyed by dotted algorithm OIDs."""

    def __init__(self) -> None:
        self._digests: dict[str, DigestBackend | _Declared] = {}
        self._signatures: dict[str, SignatureBackend | _Declared] = {}

    @classmethod
    def standard(cls) -> BackendRegistry:
        """SHA-2, RSA/ECDSA/Ed25519, and the GOST algorithms declared without a backend."""
        registry = cls()
        for oid, (name, hashlib_name) in _SHA2.items():
            registry.register_digest(oid, HashlibDigest(name, hashlib_name))
        for oid, name in _STANDARD_SIGNATURES.items():
            registry.register_signature(oid, CryptographySignature(name))
        for oid, name in _GOST_DIGESTS.items():
            registry._digests[oid] = _Declared(name)
        for oid, name in _GOST_SIGNATURES.items():
            registry._signatures[oid] = _Declared(name)
        return registry

    def register_digest(self, oid: str, backend: DigestBackend) -> None:
        self._digests[oid] = backend

    def register_signature(self, oid: str, backend: SignatureBackend) -> None:
        self._signatures[oid] = backend

    def digest(self, oid: str) -> DigestBackend:
        backend = self._digests.get(oid)
        if backend is None or isinstance(backend, _Declared):
            raise UnsupportedAlgorithm(
                f"digest algorithm {describe_digest(oid)} is not supported: "
                "no backend is installed for it"
            )
        return backend

    def signature(self, oid: str) -> SignatureBackend:
        backend = self._signatures.get(oid)
        if backend is None or isinstance(backend, _Declared):
            raise UnsupportedAlgorithm(
                f"signature algorithm {self.describe_signature(oid)} is not supported: "
                "no backend is installed for it"
            )
        return backend

    def knows_signature(self, oid: str) -> bool:
        """Whether the OID is registered, with a backend or declared without one."""
        return oid in self._signatures

    def describe_signature(self, oid: str) -> str:
        entry = self._signatures.get(oid)
        if entry is not None:
            return f"{entry.name} (OID {oid})"
        return f"OID {oid}"

    def describe_digest(self, oid: str) -> str:
        entry = self._digests.get(oid)
        if entry is not None:
            return f"{entry.name} (OID {oid})"
        return describe_digest(oid)


def describe_digest(oid: str) -> str:
    """Name a digest OID for a message, whether or not a backend exists for it."""
    if oid in _SHA2:
        return f"{_SHA2[oid][0]} (OID {oid})"
    if oid in _GOST_DIGESTS:
        return f"{_GOST_DIGESTS[oid]} (OID {oid})"
    return f"OID {oid}"


class RegistrySignatureValidator(SignatureValidator):
    """Lets pyhanko-certvalidator check certificate signatures with the registry's backends.

    An algorithm with a registered backend (e.g. a plugged-in GOST one) uses it;
    a declared-but-missing one is refused by name; anything else falls back to
    pyhanko's own validator, whose weak-algorithm policy still applies.
    """

    def __init__(self, registry: BackendRegistry) -> None:
        self._registry = registry
        self._default = DefaultSignatureValidator()

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        oid = signature_algorithm["algorithm"].dotted
        if not self._registry.knows_signature(oid):
            self._default.validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
            return
        digest = context.contextual_md_algorithm
        # pyhanko turns InvalidSignature (AlgorithmNotSupported is one) into a path
        # validation error; anything else would escape it.
        try:
            self._registry.signature(oid).verify(
                signature=signature,
                signed_data=signed_data,
                public_key_info=public_key_info,
                signature_algorithm=signature_algorithm,
                digest_algorithm=None
                if digest is None
                else algos.DigestAlgorithmId(digest).dotted,
            )
        except UnsupportedAlgorithm as unsupported:
            raise AlgorithmNotSupported(str(unsupported)) from unsupported
