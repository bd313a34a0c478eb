"""`edgekit keys init|sign|trust|show`: the Ed25519 key pair that makes a car run only its workstation's bundles.

Workstation: `keys init` once (convert then signs every bundle), `keys sign BUNDLE` for a bundle
made before. Car: `keys trust signing.pub` installs the workstation's public key; from then on
the car refuses unsigned or badly signed bundles (verify, deploy, runtime load and hot swap).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "keys"
HELP = "make a signing key pair (workstation), sign a bundle, or trust a public key (car)"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="workstation: make signing.key and signing.pub (once)")
    init.add_argument("--comment", default="", help="text after the public key (e.g. the workstation's name)")
    init.add_argument("--overwrite", action="store_true", help="replace an existing key (cars must trust the new one)")
    sign = sub.add_parser("sign", help="workstation: verify a bundle folder, then sign it")
    sign.add_argument("bundle", type=Path, help="bundle folder")
    trust = sub.add_parser("trust", help="car: accept bundles signed by this public key (signing.pub)")
    trust.add_argument("public_key", type=Path, help="the workstation's signing.pub")
    sub.add_parser("show", help="this machine's signing key and trusted keys")
    for action in sub.choices.values():
        action.add_argument("--dir", type=Path, default=None,
                            help="key folder (default $EDGEKIT_CONFIG_DIR or ~/.config/edgekit)")


def run(args: argparse.Namespace) -> int:
    import os

    from edge.errors import UserError
    from edge.signing import (
        SIGNING_PUB,
        TRUSTED_KEYS,
        config_dir,
        init_keys,
        load_signing_key,
        parse_public_keys,
        sign_bundle,
        trusted_keys,
    )

    folder = args.dir or config_dir()
    if args.keys_command == "init":
        private, public = init_keys(folder, args.comment, args.overwrite)
        print(f"private key: {private} (keep it on this machine only)")
        print(f"public key:  {public}")
        print(f"on each car: copy {public.name} there and run `edgekit keys trust {public.name}`")
        return 0
    if args.keys_command == "sign":
        from edge.bundle import verify_bundle

        if not args.bundle.is_dir():
            raise UserError(f"{args.bundle} is not a bundle folder: sign the folder, then archive it")
        key = load_signing_key(folder / "signing.key", required=True)
        verify_bundle(args.bundle)  # never sign what would not pass on a car
        print(f"signed {args.bundle} with key {sign_bundle(args.bundle, key)}")
        return 0
    if args.keys_command == "trust":
        try:
            text = args.public_key.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {args.public_key} ({error}): give the workstation's {SIGNING_PUB}") from error
        new = parse_public_keys(text, args.public_key)
        if not new:
            raise UserError(f"{args.public_key} holds no public key: give the workstation's {SIGNING_PUB}")
        path = folder / TRUSTED_KEYS
        known = trusted_keys(path) if path.exists() else {}
        folder.mkdir(parents=True, exist_ok=True)
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        added = [line for line in lines if not set(parse_public_keys(line, args.public_key)) <= set(known)]
        partial = path.with_name(f".{TRUSTED_KEYS}.partial")
        partial.write_text(old + "".join(line + "\n" for line in added), encoding="utf-8")
        os.replace(partial, path)
        print(f"{path}: trusts {', '.join(sorted({*known, *new}))}; unsigned bundles are now refused here")
        return 0
    signing = load_signing_key(folder / "signing.key")
    from edge.signing import key_id, public_key_of

    print(json.dumps({"folder": str(folder),
                      "signing_key": key_id(public_key_of(signing)) if signing is not None else None,
                      "trusted_keys": sorted(trusted_keys(folder / TRUSTED_KEYS))}, indent=2))
    return 0
