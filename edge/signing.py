"""Ed25519 signatures on bundle manifests: a car that trusts a key runs only bundles signed with it.

Why: the manifest digest (edge.bundle) catches damage and naive edits, but anyone who can write
a bundle can redo every hash. A signature over the manifest (which lists the SHA-256 of every
other file) cannot be redone without the workstation's private key.

Files, in `config_dir()` ($EDGEKIT_CONFIG_DIR, else $XDG_CONFIG_HOME/edgekit, else ~/.config/edgekit):

    signing.key   workstation: the private key (PEM, PKCS#8, mode 0600); never copy it to a car
    signing.pub   workstation: its public key, one line "ed25519 <base64 key> <comment>"
    trusted.pub   car: the public keys it accepts, one per line, same format; when this file
                  exists, every bundle must carry a good signature by one of them

A signed bundle holds `manifest.sig`, one line: "ed25519 <key id> <base64 signature>", where the
signature covers SIGNED_PREFIX + the exact bytes of manifest.json.

Example:
    >>> init_keys(config_dir())                       # workstation, once
    >>> sign_bundle(Path("bundles/int8"), load_signing_key())
    >>> check_signature(Path("bundles/int8"), manifest_bytes, trusted_keys())   # the car
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import Any

from edge.errors import UserError

SIGNATURE_FILE = "manifest.sig"
SIGNING_KEY = "signing.key"
SIGNING_PUB = "signing.pub"
TRUSTED_KEYS = "trusted.pub"
ALGORITHM = "ed25519"
SIGNED_PREFIX = b"edgekit bundle manifest v1\n"  # domain separation: this key signs nothing else
_MAX_KEY_FILE = 64 * 1024


class SignatureError(UserError):
    """A signature or key that is missing, malformed or does not match."""


def config_dir() -> Path:
    """Where edgekit keeps keys on this machine."""
    if os.environ.get("EDGEKIT_CONFIG_DIR"):
        return Path(os.environ["EDGEKIT_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "edgekit"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as error:
        raise SignatureError("bundle signatures need the `cryptography` package (in the device extra): "
                             "pip install 'cryptography>=38' or apt install python3-cryptography") from error
    return ed25519


def key_id(public_raw: bytes) -> str:
    """Short, stable name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _public_line(public_raw: bytes, comment: str) -> str:
    return f"{ALGORITHM} {base64.b64encode(public_raw).decode()} {comment}".strip() + "\n"


def init_keys(folder: Path, comment: str = "", overwrite: bool = False) -> tuple[Path, Path]:
    """Make a new key pair in `folder`: (signing.key, signing.pub). Refuses to replace a key."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    folder = Path(folder)
    private_path, public_path = folder / SIGNING_KEY, folder / SIGNING_PUB
    if private_path.exists() and not overwrite:
        raise SignatureError(f"{private_path} already exists: keep it (cars trust it), or pass --overwrite "
                             "and install the new signing.pub on every car")
    folder.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    partial = private_path.with_name(f".{SIGNING_KEY}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(partial, private_path)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public_path.write_text(_public_line(raw, comment or f"edgekit {key_id(raw)}"), encoding="utf-8")
    return private_path, public_path


def load_signing_key(path: Path | None = None, required: bool = False) -> Any:
    """The workstation's private key, or None when there is none (and `required` is False)."""
    path = Path(path) if path else config_dir() / SIGNING_KEY
    if not path.is_file():
        if required:
            raise SignatureError(f"no signing key at {path}: run `edgekit keys init` first")
        return None
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise SignatureError(f"{path} is not a PEM private key ({error}): run `edgekit keys init` again") from error
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path} is not an Ed25519 key: make one with `edgekit keys init`")
    return key


def parse_public_keys(text: str, source: Path | str) -> dict[str, bytes]:
    """{key id: raw public key} from lines "ed25519 <base64> [comment]" ('#' lines ignored)."""
    keys: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            if words[0] != ALGORITHM or len(words) < 2:
                raise ValueError(f"expected '{ALGORITHM} <base64 key>'")
            raw = base64.b64decode(words[1], validate=True)
            if len(raw) != 32:
                raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
        except (ValueError, binascii.Error) as error:
            raise SignatureError(f"{source} line {number} is not a public key ({error}): "
                                 "copy the workstation's signing.pub there again") from error
        keys[key_id(raw)] = raw
    return keys


def trusted_keys(path: Path | None = None) -> dict[str, bytes]:
    """The keys this machine requires bundles to be signed with ({} = signatures not required)."""
    path = Path(path) if path else config_dir() / TRUSTED_KEYS
    if not path.exists():
        return {}
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise SignatureError(f"{path} is larger than {_MAX_KEY_FILE} bytes: it is not a key list")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SignatureError(f"cannot read the trusted keys {path} ({error}): fix or remove it") from error
    keys = parse_public_keys(text, path)
    if not keys:
        raise SignatureError(f"{path} holds no key: put the workstation's signing.pub there, or remove the file")
    return keys


def public_key_of(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signature_line(manifest_bytes: bytes, key: Any) -> str:
    """The manifest.sig line for these manifest bytes."""
    signature = key.sign(SIGNED_PREFIX + manifest_bytes)
    return f"{ALGORITHM} {key_id(public_key_of(key))} {base64.b64encode(signature).decode()}\n"


def sign_bundle(root: Path, key: Any) -> str:
    """Write manifest.sig for the bundle folder `root`; returns the key id."""
    line = signature_line((Path(root) / "manifest.json").read_bytes(), key)
    partial = Path(root) / f".{SIGNATURE_FILE}.partial"
    partial.write_text(line, encoding="utf-8")
    os.replace(partial, Path(root) / SIGNATURE_FILE)
    return line.split()[1]


def check_signature(root: Path, manifest_bytes: bytes, trusted: dict[str, bytes]) -> str:
    """Key id of the trusted key whose signature in root/manifest.sig covers `manifest_bytes`.

    Raises SignatureError when the bundle is unsigned, signed by another key, or the
    signature does not match (the manifest, or through it any file, was changed).
    """
    ed25519 = _crypto()
    path = Path(root) / SIGNATURE_FILE
    if not path.is_file():
        raise SignatureError(f"{root} is not signed, and this machine accepts only bundles signed by "
                             f"key {', '.join(trusted)}: sign it on the workstation (`edgekit keys sign`)")
    try:
        words = path.read_bytes()[:1024].decode("ascii").split()
        if len(words) != 3 or words[0] != ALGORITHM:
            raise ValueError("expected one line 'ed25519 <key id> <signature>'")
        signature = base64.b64decode(words[2], validate=True)
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise SignatureError(f"{path} is malformed ({error}): sign the bundle again") from error
    raw = trusted.get(words[1])
    if raw is None:
        raise SignatureError(f"{root} is signed by key {words[1]}, which this machine does not trust "
                             f"(trusted: {', '.join(trusted)}): sign it with the right workstation key")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(signature, SIGNED_PREFIX + manifest_bytes)
    except Exception as error:  # cryptography raises InvalidSignature (and ValueError for bad lengths)
        raise SignatureError(f"the signature in {path} does not match its manifest ({type(error).__name__}): "
                             "the bundle was changed after it was signed; do not run it") from error
    return words[1]
