#!/usr/bin/env python3
"""Regenerate the "ignored section" nodes of schemas/values.schema.json from deployKF's defaults.

meshgen accepts a whole deployKF values file but acts only on a few sections. Every other
deployKF section (``argocd``, ``kubernetes``,
every child of ``deploykf_opt`` / ``kubeflow_dependencies`` / ``kubeflow_tools``,
``deploykf_tools``, ...) is described in the schema by a generated node that mirrors the
structure of deployKF's ``default_values.yaml``:

* a map with keys      -> {"type": ["object", "null"], "properties": {...}, "additionalProperties": false}
* an empty map ``{}``  -> no constraint (deployKF treats it as free-form)
* a scalar or a list   -> no constraint

so that a misspelt key is rejected at any depth, while any value is accepted. A few keys
that deployKF's own sample files carry in the wrong place are accepted too (EXTRA_SECTIONS). The root
node of each such section carries ``"x-meshgen-ignored": true``; meshgen uses that marker
to warn (once per section) when a user sets a key it will not act on.

The hand-written parts of the schema (the root node, the group nodes such as
``deploykf_core``, and the sections meshgen implements, listed in IMPLEMENTED below) are
kept as they are; only the ignored nodes are replaced, in deployKF's key order. The
output is deterministic: running the script twice gives identical bytes.

A section meshgen implements only in part (e.g. ``deploykf_dependencies.cert_manager``,
where meshgen reads ``namespace`` and ``clusterIssuer`` but does not install
cert-manager) has a hand-written node whose direct children are either hand-written
(kept as they are) or generated ignored nodes (marked ``"x-meshgen-ignored": true``).
The generated children are rebuilt from deployKF's defaults like any ignored section,
with the reason from IGNORED_REASONS in their description; a deployKF key the
hand-written node lacks is added as such a generated child, and a generated child whose
key deployKF no longer has is dropped.

Re-run it when:
  * the deployKF reference values change (new deployKF version), or
  * a section moves between "implemented" and "ignored" (edit IMPLEMENTED first, and
    hand-write the schema node of a newly implemented section).

Usage (from the repository root):
    python3 scripts/gen-deploykf-sections.py [DEPLOYKF_DEFAULT_VALUES] [--schema PATH] [--check]

DEPLOYKF_DEFAULT_VALUES defaults to ../shared/reference/deploykf-0.1.5/default_values.yaml,
relative to the repository root. --check exits with status 1, without writing, when the
schema file is not up to date. Requires PyYAML.
"""

import argparse
import json
import os
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DEPLOYKF_VALUES = "../shared/reference/deploykf-0.1.5/default_values.yaml"
DEFAULT_SCHEMA = "schemas/values.schema.json"

# top-level deployKF keys whose children are sections (the group node itself is hand-written)
GROUPS = (
    "deploykf_dependencies",
    "deploykf_core",
    "deploykf_opt",
    "kubeflow_dependencies",
    "kubeflow_tools",
)

# sections meshgen implements: their schema nodes are hand-written and never touched here
IMPLEMENTED = {
    ("deploykf_dependencies", "cert_manager"),
    ("deploykf_dependencies", "istio"),
    ("deploykf_core", "deploykf_auth"),
    ("deploykf_core", "deploykf_istio_gateway"),
    ("deploykf_core", "deploykf_profiles_generator"),
}

# why meshgen ignores the generated children of a partly implemented section (appended to
# their description; a section not listed here gets no reason)
IGNORED_REASONS = {
    ("deploykf_dependencies", "cert_manager"): "meshgen does not install cert-manager",
}

# top-level deployKF keys meshgen implements (hand-written, like IMPLEMENTED)
IMPLEMENTED_TOP = {"argocd"}

# keys that are not in deployKF's defaults but appear in deployKF's own sample values files,
# accepted as extra ignored sections: schema path -> deployKF path whose structure they copy.
#  - deployKF v0.1.5's sample-values-overrides.yaml places `profileResourceGeneration` directly
#    under `kubeflow_tools` (mis-indented; deployKF reads it under `kubeflow_tools.pipelines`),
#    so a values file started from that template carries this key
EXTRA_SECTIONS = {
    ("kubeflow_tools", "profileResourceGeneration"): ("kubeflow_tools", "pipelines", "profileResourceGeneration"),
}

MARKER = "x-meshgen-ignored"
NODE_DESCRIPTION = "deployKF key, accepted and ignored by meshgen."


class KeyStringLoader(yaml.BaseLoader):
    """YAML loader that keeps every key (and scalar) as its original string.

    deployKF's files may hold keys such as ``on`` or ``yes`` that YAML 1.1 loaders turn
    into booleans; BaseLoader resolves no implicit types, so key names stay intact.
    Duplicate keys are rejected rather than silently merged; a YAML merge key (`<<`) is
    not expanded (deployKF's files use none).
    """


def _construct_mapping(loader, node, deep=False):
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, "non-scalar mapping key", key_node.start_mark)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % key, key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


KeyStringLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def ignored_node(value, section_path=None):
    """Schema node for a deployKF value inside an ignored section."""
    if section_path is not None:
        node = {
            "description": "deployKF section `%s`, accepted and ignored by meshgen." % section_path,
            MARKER: True,
        }
    else:
        node = {"description": NODE_DESCRIPTION}
    if isinstance(value, dict) and value:
        node["type"] = ["object", "null"]
        node["properties"] = {key: ignored_node(child) for key, child in value.items()}
        node["additionalProperties"] = False
    return node


def refresh_implemented(node, value, section, section_path):
    """Rebuild the generated (ignored) direct children of a hand-written section node.

    Hand-written children are kept as they are; every deployKF key that has no
    hand-written child gets a generated ignored node (see the module docstring).
    """
    if not isinstance(value, dict):
        return node
    reason = IGNORED_REASONS.get(section)

    def build(key):
        existing = node.get("properties", {}).get(key)
        if isinstance(existing, dict) and not is_ignored(existing):
            return existing
        child_path = "%s.%s" % (section_path, key)
        child = ignored_node(value[key], child_path)
        if reason:
            child["description"] = ("deployKF key `%s`, accepted and ignored by meshgen (%s)"
                                    % (child_path, reason))
        else:
            child["description"] = "deployKF key `%s`, accepted and ignored by meshgen." % child_path
        return child

    node["properties"] = merge_properties(node.get("properties", {}), list(value), build)
    return node


def lookup(defaults, path):
    value = defaults
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise SystemExit("error: deployKF defaults have no key %s" % ".".join(path))
        value = value[key]
    return value


def is_ignored(node):
    return isinstance(node, dict) and node.get(MARKER) is True


def merge_properties(existing, deploykf_keys, build):
    """Rebuild a ``properties`` map: hand-written extras first, then deployKF keys in order.

    ``build(key)`` returns the node for a deployKF key. Stale generated nodes (marked
    ignored, no longer in deployKF) are dropped; other hand-written nodes are kept.
    """
    out = {}
    for key, node in existing.items():
        if key not in deploykf_keys and not is_ignored(node):
            out[key] = node
    for key in deploykf_keys:
        out[key] = build(key)
    return out


def regenerate(schema, defaults):
    if not isinstance(defaults, dict):
        raise SystemExit("error: deployKF default values are not a map")
    root_props = schema.setdefault("properties", {})

    def build_top(key):
        value = defaults[key]
        if key in IMPLEMENTED_TOP:
            node = root_props.get(key)
            if not isinstance(node, dict) or is_ignored(node):
                raise SystemExit("error: schema has no hand-written node for %r" % key)
            return refresh_implemented(node, value, key, key)
        if key not in GROUPS:
            return ignored_node(value, key)
        group = root_props.get(key)
        if not isinstance(group, dict) or is_ignored(group):
            raise SystemExit("error: schema has no hand-written node for group %r" % key)
        children = dict(value) if isinstance(value, dict) else {}
        extras = {}
        for (group_key, child), source in EXTRA_SECTIONS.items():
            if group_key == key and child not in children:
                extras[child] = lookup(defaults, source)

        def build_child(child):
            if (key, child) in IMPLEMENTED:
                node = group.get("properties", {}).get(child)
                if not isinstance(node, dict) or is_ignored(node):
                    raise SystemExit("error: schema has no hand-written node for %s.%s" % (key, child))
                return refresh_implemented(node, children[child], (key, child), "%s.%s" % (key, child))
            if child in extras:
                node = ignored_node(extras[child], "%s.%s" % (key, child))
                node["description"] = ("Misplaced deployKF key from deployKF's sample-values-overrides.yaml "
                                       "(deployKF reads it under `%s`), accepted and ignored by meshgen."
                                       % ".".join(EXTRA_SECTIONS[(key, child)]))
                return node
            return ignored_node(children[child], "%s.%s" % (key, child))

        group["properties"] = merge_properties(
            group.get("properties", {}), list(children) + sorted(extras), build_child)
        group["additionalProperties"] = False
        return group

    schema["properties"] = merge_properties(root_props, list(defaults), build_top)
    schema["additionalProperties"] = False
    return schema


def main(argv=None):
    parser = argparse.ArgumentParser(description="Regenerate ignored deployKF sections in the values schema.")
    parser.add_argument("deploykf_values", nargs="?", default=DEFAULT_DEPLOYKF_VALUES,
                        help="deployKF default_values.yaml (relative paths are from the repo root)")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA,
                        help="schema file to rewrite (relative paths are from the repo root)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the schema file is out of date")
    args = parser.parse_args(argv)

    values_path = os.path.join(REPO_ROOT, args.deploykf_values)
    schema_path = os.path.join(REPO_ROOT, args.schema)

    with open(values_path, encoding="utf-8") as f:
        defaults = yaml.load(f, Loader=KeyStringLoader)
    with open(schema_path, encoding="utf-8") as f:
        current = f.read()

    schema = regenerate(json.loads(current), defaults)
    rendered = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"

    if args.check:
        if rendered != current:
            print("%s is out of date; run scripts/gen-deploykf-sections.py" % args.schema, file=sys.stderr)
            return 1
        return 0
    if rendered != current:
        tmp = schema_path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(rendered)
        os.replace(tmp, schema_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
