#!/usr/bin/env python3
"""Generate schemas/deploykf-sections.json, the deployKF sections meshgen accepts and ignores.

meshgen accepts a whole deployKF values file but acts only on a few sections. The schema of
the sections it renders is derived from its Rust types (src/config.rs, through schemars);
every other deployKF key (``kubernetes``, every child of ``deploykf_opt`` /
``kubeflow_dependencies`` / ``kubeflow_tools``, ``deploykf_tools``, ``argocd.source.plugin``,
the parts of ``deploykf_dependencies.cert_manager`` meshgen does not read, ...) is described by
a generated node that mirrors the structure of deployKF's ``default_values.yaml``:

* a map with keys      -> {"type": ["object", "null"], "properties": {...}, "additionalProperties": false}
* an empty map ``{}``  -> no constraint (deployKF treats it as free-form)
* a scalar or a list   -> no constraint

so that a misspelt key is rejected at any depth, while any value is accepted. The root node of
each such section carries ``"x-meshgen-ignored": true``; meshgen uses that marker to warn (once
per section) when a user sets a key it will not act on. A few keys that deployKF's own sample
files carry in the wrong place are accepted too (EXTRA_SECTIONS).

This script writes only those generated nodes, in a tree shaped like the schema. A node that
meshgen's Rust types describe (the root, the groups holding an implemented section, the
sections in IMPLEMENTED) appears as ``{"x-meshgen-implemented": true, "properties": {...}}``
listing every deployKF key below it, in deployKF's order, each as a generated ignored node.
Rust (``meshgen::schema::derive``) merges the two into the shipped schema,
schemas/values.schema.json: where its types have a key, theirs wins; a key they lack gets
the generated node. Regenerate the shipped schema after running this script:
``MESHGEN_BLESS=1 cargo test --test schema``.

This script knows which sections meshgen implements, but never their keys. The output is
deterministic: running the script twice gives identical bytes.

Re-run it when:
  * the deployKF reference values change (new deployKF version), or
  * a section moves between "implemented" and "ignored" (edit IMPLEMENTED, and describe a
    newly implemented section in src/config.rs).

Usage (from the repository root):
    python3 scripts/gen-deploykf-sections.py [DEPLOYKF_DEFAULT_VALUES] [--output PATH] [--check]

DEPLOYKF_DEFAULT_VALUES defaults to ../shared/reference/deploykf-0.1.5/default_values.yaml,
relative to the repository root. --check exits with status 1, without writing, when the
output file is not up to date. Requires PyYAML.
"""

import argparse
import json
import os
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DEPLOYKF_VALUES = "../shared/reference/deploykf-0.1.5/default_values.yaml"
DEFAULT_OUTPUT = "schemas/deploykf-sections.json"

# top-level deployKF keys whose children are sections; the description is used when meshgen
# implements none of the group's sections (otherwise the Rust type describes the group)
GROUPS = {
    "deploykf_dependencies": "deployKF dependencies installed before the platform's own components.",
    "deploykf_core": "deployKF core components.",
    "deploykf_opt": "Optional deployKF components.",
    "kubeflow_dependencies": "Dependencies of the Kubeflow tools.",
    "kubeflow_tools": "Kubeflow tools.",
}

# nodes meshgen's Rust types describe (src/config.rs); their deployKF children are generated
# as ignored nodes, and Rust keeps its own node for every key its types have
IMPLEMENTED = {
    ("argocd",),
    ("argocd", "source"),
    ("deploykf_dependencies", "cert_manager"),
    ("deploykf_dependencies", "cert_manager", "charts"),
    ("deploykf_dependencies", "cert_manager", "images"),
    ("deploykf_dependencies", "istio"),
    ("deploykf_core", "deploykf_auth"),
    ("deploykf_core", "deploykf_istio_gateway"),
    ("deploykf_core", "deploykf_profiles_generator"),
}

# why meshgen ignores the generated children of an implemented node (appended to their
# description; a node not listed here gets no reason)
IGNORED_REASONS = {
    ("deploykf_dependencies", "cert_manager", "charts"): "meshgen does not render trust-manager",
    ("deploykf_dependencies", "cert_manager", "images"): "meshgen does not render trust-manager",
}

# descriptions of single generated nodes, where the general wording says too little
DESCRIPTIONS = {
    ("argocd", "source", "plugin"): "deployKF key `argocd.source.plugin` (deployKF's Argo CD plugin), "
                                    "accepted and ignored by meshgen: meshgen's output is plain manifests and charts.",
}

# keys that are not in deployKF's defaults but appear in deployKF's own sample values files,
# accepted as extra ignored sections: schema path -> deployKF path whose structure they copy.
#  - deployKF v0.1.5's sample-values-overrides.yaml places `profileResourceGeneration` directly
#    under `kubeflow_tools` (mis-indented; deployKF reads it under `kubeflow_tools.pipelines`),
#    so a values file started from that template carries this key
EXTRA_SECTIONS = {
    ("kubeflow_tools", "profileResourceGeneration"): ("kubeflow_tools", "pipelines", "profileResourceGeneration"),
}

MARKER = "x-meshgen-ignored"
IMPLEMENTED_MARKER = "x-meshgen-implemented"
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



def ignored_node(value, description=None):
    """Schema node for a deployKF value inside an ignored section (the section's root when
    ``description`` is given)."""
    if description is not None:
        node = {"description": description, MARKER: True}
    else:
        node = {"description": NODE_DESCRIPTION}
    if isinstance(value, dict) and value:
        node["type"] = ["object", "null"]
        node["properties"] = {key: ignored_node(child) for key, child in value.items()}
        node["additionalProperties"] = False
    return node


def child_description(parent, key):
    """Description of a generated child of an implemented node."""
    path = parent + (key,)
    if path in DESCRIPTIONS:
        return DESCRIPTIONS[path]
    dotted = ".".join(path)
    reason = IGNORED_REASONS.get(parent)
    if reason:
        return "deployKF key `%s`, accepted and ignored by meshgen (%s)" % (dotted, reason)
    return "deployKF key `%s`, accepted and ignored by meshgen." % dotted


def lookup(defaults, path):
    value = defaults
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise SystemExit("error: deployKF defaults have no key %s" % ".".join(path))
        value = value[key]
    return value


def implemented_node(path, value):
    """The overlay of a node meshgen's types describe: every deployKF child, generated."""
    if not isinstance(value, dict):
        raise SystemExit("error: deployKF's %s is not a map" % ".".join(path))
    props = {}
    for key, child in value.items():
        if path + (key,) in IMPLEMENTED:
            props[key] = implemented_node(path + (key,), child)
        else:
            props[key] = ignored_node(child, child_description(path, key))
    return {IMPLEMENTED_MARKER: True, "properties": props}


def group_node(defaults, key):
    value = defaults[key]
    children = dict(value) if isinstance(value, dict) else {}
    extras = {}
    for (group_key, child), source in EXTRA_SECTIONS.items():
        if group_key == key and child not in children:
            extras[child] = source
    props = {}
    for child in list(children) + sorted(extras):
        path = (key, child)
        if path in IMPLEMENTED:
            props[child] = implemented_node(path, children[child])
        elif child in extras:
            props[child] = ignored_node(
                lookup(defaults, extras[child]),
                "Misplaced deployKF key from deployKF's sample-values-overrides.yaml "
                "(deployKF reads it under `%s`), accepted and ignored by meshgen." % ".".join(extras[child]))
        else:
            props[child] = ignored_node(children[child], "deployKF section `%s.%s`, accepted and ignored by meshgen." % path)
    if any(path[0] == key and len(path) == 2 for path in IMPLEMENTED):
        return {IMPLEMENTED_MARKER: True, "properties": props}
    return {"description": GROUPS[key], "type": "object", "properties": props, "additionalProperties": False}


def generate(defaults):
    if not isinstance(defaults, dict):
        raise SystemExit("error: deployKF default values are not a map")
    props = {}
    for key, value in defaults.items():
        if (key,) in IMPLEMENTED:
            props[key] = implemented_node((key,), value)
        elif key in GROUPS:
            props[key] = group_node(defaults, key)
        else:
            props[key] = ignored_node(value, "deployKF section `%s`, accepted and ignored by meshgen." % key)
    return {
        "description": "Generated by scripts/gen-deploykf-sections.py from deployKF's default values; "
                       "merged with the schema derived from src/config.rs into values.schema.json.",
        IMPLEMENTED_MARKER: True,
        "properties": props,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the ignored deployKF sections of the values schema.")
    parser.add_argument("deploykf_values", nargs="?", default=DEFAULT_DEPLOYKF_VALUES,
                        help="deployKF default_values.yaml (relative paths are from the repo root)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="file to write (relative paths are from the repo root)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file is out of date")
    args = parser.parse_args(argv)

    values_path = os.path.join(REPO_ROOT, args.deploykf_values)
    output_path = os.path.join(REPO_ROOT, args.output)

    with open(values_path, encoding="utf-8") as f:
        defaults = yaml.load(f, Loader=KeyStringLoader)
    try:
        with open(output_path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None

    rendered = json.dumps(generate(defaults), indent=2, ensure_ascii=False) + "\n"

    if args.check:
        if rendered != current:
            print("%s is out of date; run scripts/gen-deploykf-sections.py, then "
                  "MESHGEN_BLESS=1 cargo test --test schema" % args.output, file=sys.stderr)
            return 1
        return 0
    if rendered != current:
        tmp = output_path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(rendered)
        os.replace(tmp, output_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
