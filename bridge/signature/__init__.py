"""Electronic signatures of approval documents: detached CMS verification (DESIGN §2)."""

from bridge.signature.backends import (
    BackendRegistry,
    DigestBackend,
    SignatureBackend,
    UnsupportedAlgorithm,
)
from bridge.signature.verify import (
    SignatureCheck,
    SignatureConfigError,
    SignatureVerifier,
    VerificationResult,
    load_verifier_config,
)

__all__ = [
    "BackendRegistry",
    "DigestBackend",
    "SignatureBackend",
    "SignatureCheck",
    "SignatureConfigError",
    "SignatureVerifier",
    "UnsupportedAlgorithm",
    "VerificationResult",
    "load_verifier_config",
]
