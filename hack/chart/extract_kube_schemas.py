"""Extracts one Kubernetes JSON-schema set from the kubernetes-validate wheel
into a directory kubeconform reads (-schema-location DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json).

The wheel's "local" sets reference `/api/_definitions.json` under an `$id` on
kubernetes.io, which only its own resolver maps to files: the `$id` goes and
the references become relative to the sibling `_definitions.json`.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

ROOT = "kubernetes_validate/kubernetes-json-schema/"


def main(wheel: str, schema_set: str, target: str) -> None:
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"{ROOT}{schema_set}/"
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.startswith(prefix) or not name.endswith(".json"):
                continue
            schema = json.loads(archive.read(name))
            schema.pop("$id", None)
            text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
            (out / name[len(prefix) :]).write_text(text)
            count += 1
    if count == 0:
        sys.exit(f"no schema set {schema_set!r} in {wheel}")
    print(f"{count} schemas of {schema_set} in {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
