"""``kubeseal`` for the workshop: seal a Secret manifest with the lab's certificate, offline.

A participant has no cluster to run the real ``kubeseal`` against, but the
exercise folder holds the sealed-secrets controller's certificate
(``pub-cert.pem``, what ``kubeseal --fetch-cert`` prints), and sealing needs
nothing else.  The command line follows ``kubeseal``'s own::

    python -m labkit.workshop.kubeseal --cert pub-cert.pem --format yaml \\
        < db-credentials.local.yaml > app/db-credentials-sealed.yaml

    python -m labkit.workshop.kubeseal --cert pub-cert.pem -f secret.yaml -w sealed.yaml [--scope namespace-wide]

It uses ``labkit.secrets.sealed.seal`` (RSA-OAEP + AES-GCM, upstream's wire
format), so the result unseals in the lab's controller exactly as a real
SealedSecret would — or fails the same way when the name or namespace is
changed after sealing (strict scope).  Errors are one line on stderr and exit
status 1; nothing is ever printed from the Secret's values.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import yaml

from labkit.core.errors import LabkitError
from labkit.workshop.yamltext import yaml_dump

__all__ = ["main", "seal_text"]


def seal_text(secret_text: str, cert_pem: str, *, scope: str | None = None, fmt: str = "yaml") -> str:
    """The SealedSecret (YAML or JSON text) for the Secret manifest ``secret_text``."""
    from labkit.secrets.sealed import seal

    try:
        docs = [d for d in yaml.safe_load_all(secret_text) if d is not None]
    except yaml.YAMLError as err:
        raise LabkitError(f"not valid YAML: {str(err).splitlines()[0]}", field="input") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise LabkitError("expected exactly one Secret manifest", field="input")
    sealed = seal(docs[0], cert_pem, scope=scope)
    if fmt == "json":
        return json.dumps(sealed, indent=2) + "\n"
    return yaml_dump(sealed, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.workshop.kubeseal",
                                 description="Seal a Secret with a sealed-secrets certificate (offline kubeseal).")
    ap.add_argument("--cert", required=True, help="the controller's certificate (kubeseal --fetch-cert > pub-cert.pem)")
    ap.add_argument("-f", "--secret-file", help="the Secret manifest (default: stdin)")
    ap.add_argument("-w", "--sealed-secret-file", help="where to write the SealedSecret (default: stdout)")
    ap.add_argument("-o", "--format", default="yaml", choices=("yaml", "json"))
    ap.add_argument("--scope", choices=("strict", "namespace-wide", "cluster-wide"), default=None)
    args = ap.parse_args(argv)
    try:
        cert = Path(args.cert).read_text(encoding="utf-8")
        text = Path(args.secret_file).read_text(encoding="utf-8") if args.secret_file else sys.stdin.read()
        out = seal_text(text, cert, scope=args.scope, fmt=args.format)
        if args.sealed_secret_file:
            p = Path(args.sealed_secret_file)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(out, encoding="utf-8")
        else:
            sys.stdout.write(out)
    except OSError as err:
        print(f"error: {err.filename or ''}: {err.strerror}", file=sys.stderr)
        return 1
    except LabkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
