"""Turns CustomResourceDefinitions into JSON schemas kubeconform reads with
-schema-location 'DIR/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'.

Usage: crd_to_jsonschema.py OUT_DIR CRD_DIR_OR_FILE...

kubeconform's -strict only switches the Kubernetes schema sets to their strict
variants; for CRDs strictness must be in the schema. So every object that
lists its properties (and does not preserve unknown fields) refuses others.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


class CrdLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's `=` (value) tag: CRDs list "=" as an
    enum value (e.g. match operators), which PyYAML cannot construct."""


CrdLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return files


def main(out_dir: str, *sources: str) -> None:
    out = Path(out_dir)
    count = 0
    for file in crd_files(list(sources)):
        for doc in yaml.load_all(file.read_text(), Loader=CrdLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            kind = spec["names"]["kind"].lower()
            for version in spec["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    continue
                target = out / spec["group"] / f"{kind}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(strict(schema)))
                count += 1
    if count == 0:
        sys.exit(f"no CRD schemas in {sources}")
    print(f"{count} CRD schemas in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
