#!/usr/bin/env python3
"""Generate schemas/deploykf-sections.json, the deployKF sections meshgen accepts and ignores.

meshgen accepts a whole deployKF values file but acts only on a few sections. The schema of
the sections it renders is derived from its Rust types (src/config.rs, through schemars);
every other deployKF key (``kubernetes``, every child of ``deploykf_opt`` /
``kubeflow_dependencies`` / ``kubeflow_tools``, ``deploykf_tools``, ``argocd.source.plugin``,
the parts of ``deploykf_dependencies.cert_manager`` meshgen does not read, ...) is described by
a generated node that mirrors the structure of deployKF's ``default_values.yaml`` of every
release in RELEASES (the union of their keys: a user who upgraded deployKF may still carry a key
an older release knew):

* a map with keys      -> {"type": ["object", "null"], "properties": {...}, "additionalProperties": false}
* an empty map ``{}``  -> no constraint (deployKF treats it as free-form)
* a scalar or a list   -> no constraint
* a map in one release and a scalar or a list in another -> no type, the map's properties

so that meshgen can name a misspelt key at any depth (with a "did you mean"), while any value is
accepted. The root node of each such section carries ``"x-meshgen-ignored": true``; meshgen uses
that marker to warn (once per section) when a user sets a key it will not act on, and to make an
unknown key below it a warning rather than an error (deployKF forks add keys there). A group of
sections meshgen renders none of (``kubeflow_tools``, ...) carries ``"x-meshgen-ignored-group":
true``, for the same reason. A key the newest release no longer has carries
``"x-meshgen-removed": {"in": "0.1.5", "known": "0.1.0–0.1.4"}`` (on the topmost such key only):
the release that dropped it and the releases that had it; meshgen warns when it is set. A few keys
that deployKF's own sample files carry in the wrong place are accepted too (EXTRA_SECTIONS).

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
  * the deployKF reference values change (a new deployKF release: add it to RELEASES), or
  * a section moves between "implemented" and "ignored" (edit IMPLEMENTED, and describe a
    newly implemented section in src/config.rs).

Usage (from the repository root):
    python3 scripts/gen-deploykf-sections.py [--release VERSION=PATH ...] [--output PATH] [--check]

Each --release names one deployKF release and its ``default_values.yaml``, oldest first, the
newest (current) last; without any, RELEASES is used (paths relative to the repository root).
--check exits with status 1, without writing, when the output file is not up to date.
Requires PyYAML.
"""

import argparse
import json
import os
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every deployKF release whose keys meshgen accepts, oldest first; the last is the current one
# (its keys are the ones deployKF still reads); paths are relative to the repository root
RELEASES = [
    ("0.1.0", "../shared/reference/deploykf-older/default_values-v0.1.0.yaml"),
    ("0.1.1", "../shared/reference/deploykf-older/default_values-v0.1.1.yaml"),
    ("0.1.2", "../shared/reference/deploykf-older/default_values-v0.1.2.yaml"),
    ("0.1.3", "../shared/reference/deploykf-older/default_values-v0.1.3.yaml"),
    ("0.1.4", "../shared/reference/deploykf-older/default_values-v0.1.4.yaml"),
    ("0.1.5", "../shared/reference/deploykf-0.1.5/default_values.yaml"),
]
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
GROUP_MARKER = "x-meshgen-ignored-group"
IMPLEMENTED_MARKER = "x-meshgen-implemented"
REMOVED_MARKER = "x-meshgen-removed"
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



class Key:
    """One key of the union of the releases' defaults: the releases that have it, what its value
    is in them (``map`` with keys, ``free`` for an empty map, ``leaf`` for a scalar or a list) and
    its children, newest release's order first, then the keys only older releases have."""

    def __init__(self):
        self.versions = set()
        self.kinds = set()
        self.children = {}

    def add(self, version, value):
        self.versions.add(version)
        if isinstance(value, dict) and value:
            self.kinds.add("map")
            for key, child in value.items():
                self.children.setdefault(key, Key()).add(version, child)
        elif isinstance(value, dict):
            self.kinds.add("free")
        else:
            self.kinds.add("leaf")

    def has_keys(self):
        """Whether its children are a closed set: a map with keys in every release that has
        it as a map (an empty map in any release makes it free-form)."""
        return "map" in self.kinds and "free" not in self.kinds


def union(releases):
    """The union of every release's defaults; ``releases`` is [(version, defaults)], oldest first."""
    root = Key()
    for version, defaults in reversed(releases):
        if not isinstance(defaults, dict):
            raise SystemExit("error: deployKF %s default values are not a map" % version)
        root.add(version, defaults)
    return root


def version_ranges(versions, order):
    """``versions`` as runs of consecutive releases of ``order``: "0.1.0–0.1.4", "0.1.1, 0.1.3"."""
    runs = []
    for i, version in enumerate(order):
        if version not in versions:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(order[a] if a == b else "%s\u2013%s" % (order[a], order[b]) for a, b in runs)


class Generator:
    def __init__(self, releases):
        self.order = [version for version, _ in releases]
        self.newest = self.order[-1]
        self.root = union(releases)

    def removal(self, key):
        """The marker of a key the newest release lacks: the release that dropped it and the
        releases that had it."""
        if self.newest in key.versions:
            return None
        last = max(self.order.index(v) for v in key.versions)
        return {"in": self.order[last + 1], "known": version_ranges(key.versions, self.order)}

    def ignored_node(self, key, description=None, below_removed=False):
        """Schema node for a deployKF key inside an ignored section (the section's root when
        ``description`` is given). Only the topmost key of a removed subtree is marked."""
        removal = None if below_removed else self.removal(key)
        if description is not None:
            node = {"description": description, MARKER: True}
        else:
            node = {"description": NODE_DESCRIPTION}
        if removal is not None:
            node["description"] += (" Removed in deployKF %(in)s (known in %(known)s)." % removal)
            node[REMOVED_MARKER] = removal
        if key.has_keys():
            if key.kinds == {"map"}:
                node["type"] = ["object", "null"]
            node["properties"] = {
                name: self.ignored_node(child, below_removed=below_removed or removal is not None)
                for name, child in key.children.items()
            }
            node["additionalProperties"] = False
        return node

    def lookup(self, path):
        key = self.root
        for name in path:
            if name not in key.children:
                raise SystemExit("error: deployKF defaults have no key %s" % ".".join(path))
            key = key.children[name]
        return key

    def implemented_node(self, path, key):
        """The overlay of a node meshgen's types describe: every deployKF child, generated."""
        if key.kinds != {"map"}:
            raise SystemExit("error: deployKF's %s is not a map with keys in every release" % ".".join(path))
        props = {}
        for name, child in key.children.items():
            if path + (name,) in IMPLEMENTED:
                props[name] = self.implemented_node(path + (name,), child)
            else:
                props[name] = self.ignored_node(child, child_description(path, name))
        return {IMPLEMENTED_MARKER: True, "properties": props}

    def group_node(self, name):
        key = self.root.children[name]
        extras = {}
        for (group_key, child), source in EXTRA_SECTIONS.items():
            if group_key == name and child not in key.children:
                extras[child] = source
        props = {}
        for child in list(key.children) + sorted(extras):
            path = (name, child)
            if path in IMPLEMENTED:
                props[child] = self.implemented_node(path, key.children[child])
            elif child in extras:
                props[child] = self.ignored_node(
                    self.lookup(extras[child]),
                    "Misplaced deployKF key from deployKF's sample-values-overrides.yaml "
                    "(deployKF reads it under `%s`), accepted and ignored by meshgen." % ".".join(extras[child]))
            else:
                props[child] = self.ignored_node(
                    key.children[child], "deployKF section `%s.%s`, accepted and ignored by meshgen." % path)
        if any(path[0] == name and len(path) == 2 for path in IMPLEMENTED):
            return {IMPLEMENTED_MARKER: True, "properties": props}
        return {"description": GROUPS[name], GROUP_MARKER: True, "type": "object", "properties": props,
                "additionalProperties": False}

    def generate(self):
        props = {}
        for name, key in self.root.children.items():
            if (name,) in IMPLEMENTED:
                props[name] = self.implemented_node((name,), key)
            elif name in GROUPS:
                props[name] = self.group_node(name)
            else:
                props[name] = self.ignored_node(key, "deployKF section `%s`, accepted and ignored by meshgen." % name)
        return {
            "description": "Generated by scripts/gen-deploykf-sections.py from the default values of deployKF %s; "
                           "merged with the schema derived from src/config.rs into values.schema.json."
                           % version_ranges(set(self.order), self.order),
            IMPLEMENTED_MARKER: True,
            "properties": props,
        }


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


def parse_release(text):
    version, sep, path = text.partition("=")
    if not sep or not version or not path:
        raise argparse.ArgumentTypeError("expected VERSION=PATH, got %r" % text)
    return version, path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the ignored deployKF sections of the values schema.")
    parser.add_argument("--release", action="append", type=parse_release, metavar="VERSION=PATH",
                        help="a deployKF release and its default_values.yaml, oldest first, the current "
                             "one last (relative paths are from the repo root); default: RELEASES")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="file to write (relative paths are from the repo root)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file is out of date")
    args = parser.parse_args(argv)

    releases = []
    for version, path in args.release or RELEASES:
        with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
            releases.append((version, yaml.load(f, Loader=KeyStringLoader)))
    output_path = os.path.join(REPO_ROOT, args.output)
    try:
        with open(output_path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None

    rendered = json.dumps(Generator(releases).generate(), indent=2, ensure_ascii=False) + "\n"

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
