#!/usr/bin/env python3
"""Bootstrap helper: cut openapi/pulp.yaml out of Pulp's own pk_path document.

openapi/pulp.yaml is ours and is edited by hand afterwards; this script documents how its
first version was made and can add operations later:

    python3 scripts/openapi-subset.py ../shared/notes/pulp-api-pk_path.json \
        ../shared/notes/pulp-api.json openapi/operations.txt > openapi/pulp.yaml

It keeps the listed operationIds and the schemas they reference, converts OpenAPI 3.1
nullability to 3.0.3 (`nullable: true`), renames `{repository_pk}` and `{id}` (users) to `{pulp_id}` (Gin needs
one wildcard name per segment), types `pulp_id` as a plain string (a malformed id must reach our
handler, which answers Pulp's 404), drops descriptions and the X-Task-Diagnostics header, marks
every property of a response schema required (so generated types send null, not nothing) and
records Pulp's href-template path key of every object path as `x-pulp-href-path`.
"""
import json
import sys

import yaml


def convert(node):
    """Rewrites 3.1-only constructs into their 3.0.3 form, recursively."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("description",) and not isinstance(v, dict):
                continue
            if k == "type" and isinstance(v, list):
                types = [t for t in v if t != "null"]
                out["type"] = types[0]
                if "null" in v:
                    out["nullable"] = True
                continue
            out[k] = convert(v)
        return out
    if isinstance(node, list):
        return [convert(v) for v in node]
    return node


def refs(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                found.add(v.split("/")[-1])
            else:
                refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def main():
    pk = json.load(open(sys.argv[1]))
    href = json.load(open(sys.argv[2]))
    wanted = [l.strip() for l in open(sys.argv[3]) if l.strip() and not l.startswith("#")]
    href_keys = {}
    for key, item in href["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                href_keys[op["operationId"]] = key
    paths = {}
    seen = set()
    for key, item in pk["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") not in wanted:
                continue
            seen.add(op["operationId"])
            op = convert(op)
            op.pop("tags", None)
            params = []
            for p in op.get("parameters", []):
                if p["name"] == "X-Task-Diagnostics":
                    continue
                if p["in"] == "path" and p["name"] in ("pulp_id", "repository_pk", "id"):
                    p = {"in": "path", "name": "pulp_id", "required": True, "schema": {"type": "string"}}
                params.append(p)
            op["parameters"] = params
            if "requestBody" in op:
                op["requestBody"]["content"] = {"application/json": op["requestBody"]["content"]["application/json"]}
            for code, resp in op.get("responses", {}).items():
                resp.setdefault("description", "")
            if "security" in op:
                op["security"] = [{"basicAuth": []}]
            newkey = key.replace("{repository_pk}", "{pulp_id}").replace("{id}", "{pulp_id}")
            paths.setdefault(newkey, {})[method] = op
            hk = href_keys[op["operationId"]]
            if hk != key:
                paths[newkey]["x-pulp-href-path"] = hk
    missing = set(wanted) - seen
    if missing:
        sys.exit("unknown operationIds: %s" % sorted(missing))
    schemas = {}
    todo = set()
    refs(paths, todo)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        s = convert(pk["components"]["schemas"][name])
        if name.endswith("Response") and "properties" in s:
            s["required"] = sorted(s["properties"].keys())
        schemas[name] = s
        refs(s, todo)
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "Pulp 3 API", "version": "v3",
                 "description": "Pulp-compatible container registry API (pulpgo)"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
    }
    yaml.safe_dump(doc, sys.stdout, sort_keys=False, width=100)


if __name__ == "__main__":
    main()
