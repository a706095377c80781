#!/usr/bin/env python3
"""Checks of deploy/: the plain Kubernetes manifests, the Helm chart and the systemd units.

What is checked:
  * every YAML document of deploy/kubernetes/*.yaml parses; each object has apiVersion,
    kind, metadata.name and a namespace; workloads have selectors that match their pod
    labels, containers with an image, resources and a securityContext that drops ALL
    capabilities; every Service selects a workload; the aggregator's StatefulSet has a
    volumeClaimTemplate mounted at its data_dir and a Secret with the three TLS files.
  * the Helm chart (deploy/helm/tripline) is rendered by the small renderer below, which
    implements only the template constructs the chart uses ({{ .Values.x }}, if/not/range/
    end, include, define, quote, b64enc, toYaml, nindent, trim markers) and fails on any
    other; the rendered documents then get the same checks, with the default values and
    with outputs, identities, an existing Secret and the console switched on.
  * every .Values path used by a template exists in values.yaml, and every leaf value of
    values.yaml is used by some template.
  * systemd-analyze verify accepts both units (ExecStart pointed at the built binaries).
What is not: helm itself is not run (it is not in Debian), and no OpenAPI schema of
Kubernetes is applied (no validator with the schemas is packaged in Debian); the required
fields above are checked by hand instead.

  check_deploy.py REPO_ROOT [BIN_DIR]
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
BIN_DIR = sys.argv[2] if len(sys.argv) > 2 else ""
failures = []


def fail(msg):
    failures.append(msg)


# ---- a Go-template subset -------------------------------------------------------------
TOKEN = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


def tokenize(text):
    out, pos = [], 0
    for m in TOKEN.finditer(text):
        lit = text[pos:m.start()]
        if m.group(1):
            lit = lit.rstrip(" \t\n")
        out.append(("text", lit))
        out.append(("action", m.group(2)))
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\n"))
    out.append(("text", text[pos:]))
    return out


def parse(tokens, i=0, stop=("end",)):
    nodes = []
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "text":
            nodes.append(("text", val))
            i += 1
            continue
        word = val.split()[0] if val.split() else ""
        if word in stop:
            return nodes, i
        if word in ("if", "range", "define"):
            body, j = parse(tokens, i + 1, ("end", "else"))
            other = []
            if tokens[j][1].split()[0] == "else":
                other, j = parse(tokens, j + 1, ("end",))
            nodes.append((word, val[len(word):].strip(), body, other))
            i = j + 1
        elif val.startswith("/*"):
            i += 1
        else:
            nodes.append(("expr", val))
            i += 1
    return nodes, i


class Renderer:
    def __init__(self, values, release, chart):
        self.root = {"Values": values, "Release": release, "Chart": chart}
        self.defines = {}

    def lookup(self, path, dot):
        if path == ".":
            return dot
        base = self.root if path.startswith(".") and path.split(".")[1][:1].isupper() else dot
        cur = base
        for part in path.strip(".").split("."):
            if not isinstance(cur, dict) or part not in cur:
                raise KeyError(f"template uses {path}, which is not defined")
            cur = cur[part]
        return cur

    def value(self, term, dot):
        term = term.strip()
        if term.startswith('"'):
            return term.strip('"')
        if term.startswith("not "):
            return not self.value(term[4:], dot)
        if term.startswith("include "):
            m = re.match(r'include\s+"([^"]+)"\s+\.$', term)
            if not m:
                raise ValueError(f"unsupported include: {term}")
            return self.render_nodes(self.defines[m.group(1)], dot).strip("\n")
        if term.startswith("toYaml "):
            v = self.value(term[7:], dot)
            return yaml.safe_dump(v, default_flow_style=False, sort_keys=False).rstrip("\n")
        if term.startswith("."):
            return self.lookup(term, dot)
        raise ValueError(f"unsupported template term: {term}")

    def pipeline(self, expr, dot):
        parts = [p.strip() for p in expr.split("|")]
        v = self.value(parts[0], dot)
        for f in parts[1:]:
            if f == "quote":
                v = '"' + str(v).replace('"', '\\"') + '"'
            elif f == "b64enc":
                v = base64.b64encode(str(v).encode()).decode()
            elif f.startswith("nindent "):
                n = int(f.split()[1])
                v = "\n" + "\n".join((" " * n + line) if line else line for line in str(v).split("\n"))
            else:
                raise ValueError(f"unsupported template function: {f}")
        return v

    def render_nodes(self, nodes, dot):
        out = []
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "expr":
                v = self.pipeline(node[1], dot)
                out.append("" if v is None else (str(v).lower() if isinstance(v, bool) else str(v)))
            elif node[0] == "define":
                self.defines[node[1].strip('"')] = node[2]
            elif node[0] == "if":
                out.append(self.render_nodes(node[2] if self.pipeline(node[1], dot) else node[3], dot))
            elif node[0] == "range":
                for item in self.pipeline(node[1], dot) or []:
                    out.append(self.render_nodes(node[2], item))
        return "".join(out)

    def render(self, text):
        nodes, _ = parse(tokenize(text))
        return self.render_nodes(nodes, self.root)


def used_value_paths(text):
    return set(re.findall(r"\.Values((?:\.[A-Za-z0-9_]+)+)", text))


def leaf_paths(d, prefix=""):
    for k, v in d.items():
        p = f"{prefix}.{k}"
        if isinstance(v, dict) and v:
            yield from leaf_paths(v, p)
        else:
            yield p


# ---- checks of Kubernetes objects -----------------------------------------------------
def get(obj, path, where):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            fail(f"{where}: missing {path}")
            return None
        cur = cur[part]
    return cur


def check_objects(docs, where, expect_aggregator=True):
    workloads, services, secrets = [], [], {}
    for d in docs:
        if d is None:
            continue
        w = f"{where}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        for f in ("apiVersion", "kind", "metadata.name"):
            get(d, f, w)
        if d.get("kind") != "Namespace" and not d.get("metadata", {}).get("namespace"):
            fail(f"{w}: no namespace")
        kind = d.get("kind")
        if kind in ("DaemonSet", "StatefulSet", "Deployment"):
            workloads.append(d)
            sel = get(d, "spec.selector.matchLabels", w) or {}
            labels = get(d, "spec.template.metadata.labels", w) or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                fail(f"{w}: selector {sel} does not match the pod labels {labels}")
            for c in get(d, "spec.template.spec.containers", w) or []:
                cw = f"{w} container {c.get('name')}"
                for f in ("name", "image", "securityContext.capabilities.drop"):
                    get(c, f, cw)
                if kind != "Deployment":
                    get(c, "resources.requests", cw)
                    get(c, "resources.limits", cw)
                if "ALL" not in (c.get("securityContext", {}).get("capabilities", {}).get("drop") or []):
                    fail(f"{cw}: does not drop ALL capabilities")
                mounts = {m["name"] for m in c.get("volumeMounts", [])}
                vols = {v["name"] for v in d["spec"]["template"]["spec"].get("volumes", [])}
                vols |= {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
                if mounts - vols:
                    fail(f"{cw}: mounts {sorted(mounts - vols)} that are no volume")
            if kind == "StatefulSet":
                get(d, "spec.serviceName", w)
                vct = get(d, "spec.volumeClaimTemplates", w) or []
                if not vct or not vct[0].get("spec", {}).get("resources", {}).get("requests", {}).get("storage"):
                    fail(f"{w}: no volumeClaimTemplate with a storage request")
                c = d["spec"]["template"]["spec"]["containers"][0]
                if "/var/lib/tripline-aggregator" not in [m["mountPath"] for m in c.get("volumeMounts", [])]:
                    fail(f"{w}: the data directory is not on the persistent volume")
                if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
                    fail(f"{w}: root file system not read-only")
                if not d["spec"]["template"]["spec"].get("securityContext", {}).get("runAsNonRoot"):
                    fail(f"{w}: the aggregator must not run as root")
        elif kind == "Service":
            services.append(d)
            get(d, "spec.selector", w)
            get(d, "spec.ports", w)
        elif kind == "Secret":
            secrets[d["metadata"]["name"]] = set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())
        elif kind == "ConfigMap":
            get(d, "data", w)
    for s in services:
        sel = s["spec"].get("selector", {})
        if not any(all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                   for w in workloads):
            fail(f"{where}: Service {s['metadata']['name']} selects no workload ({sel})")
    if expect_aggregator:
        if not any(w["kind"] == "StatefulSet" for w in workloads):
            fail(f"{where}: no aggregator StatefulSet")
        tls = [k for k in secrets.values() if {"ca.pem", "aggregator.pem", "aggregator-key.pem"} <= k]
        if not tls and expect_aggregator != "existing-secret":
            fail(f"{where}: no Secret with ca.pem, aggregator.pem, aggregator-key.pem")
    return workloads


def load_all(text, where):
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        fail(f"{where}: does not parse: {e}")
        return []


def main():
    kdir = os.path.join(ROOT, "deploy/kubernetes")
    all_docs = []
    for name in sorted(os.listdir(kdir)):
        if name.endswith(".yaml"):
            with open(os.path.join(kdir, name)) as f:
                all_docs += load_all(f.read(), name)
    check_objects(all_docs, "deploy/kubernetes")
    checked = len([d for d in all_docs if d])

    chart = os.path.join(ROOT, "deploy/helm/tripline")
    with open(os.path.join(chart, "Chart.yaml")) as f:
        meta = yaml.safe_load(f)
    for k in ("apiVersion", "name", "version", "appVersion"):
        if k not in meta:
            fail(f"Chart.yaml: missing {k}")
    with open(os.path.join(chart, "values.yaml")) as f:
        defaults = yaml.safe_load(f)
    tdir = os.path.join(chart, "templates")
    templates = {n: open(os.path.join(tdir, n)).read() for n in sorted(os.listdir(tdir))}
    used = set().union(*(used_value_paths(t) for t in templates.values()))
    leaves = set(leaf_paths(defaults))
    for p in sorted(used):
        if not any(leaf == p or leaf.startswith(p + ".") for leaf in leaves):
            fail(f"helm: templates use .Values{p}, not in values.yaml")
    for p in sorted(leaves):
        if not any(p == u or p.startswith(u + ".") for u in used):
            fail(f"helm: values.yaml has {p}, used by no template")

    import copy
    variants = {"defaults": defaults}
    v = copy.deepcopy(defaults)
    v["outputs"] = ["syslog+tcp://siem.example:514"]
    v["aggregator"]["identities"] = ['kind: "service" user: "backup"']
    v["tls"]["existingSecret"] = "my-tls"
    v["console"]["enabled"] = True
    variants["outputs, identities, existing secret, console"] = v
    release = {"Name": "tl", "Namespace": "security", "Service": "Helm"}
    for label, values in variants.items():
        r = Renderer(values, release, {"Name": meta["name"], "Version": meta["version"],
                                       "AppVersion": meta["appVersion"]})
        docs = []
        try:
            if "_helpers.tpl" in templates:
                r.render(templates["_helpers.tpl"])
            for n, t in templates.items():
                if n.endswith(".yaml"):
                    docs += load_all(r.render(t), f"helm ({label}) {n}")
            r.render(templates.get("NOTES.txt", ""))
        except (KeyError, ValueError) as e:
            fail(f"helm ({label}): {e}")
            continue
        check_objects(docs, f"helm ({label})",
                      "existing-secret" if values["tls"]["existingSecret"] else True)
        cms = {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "ConfigMap"}
        agg = cms.get("tl-aggregator-config", {}).get("data", {}).get("aggregator.textproto", "")
        if f"event_retention_hours: {values['aggregator']['retentionHours']}" not in agg:
            fail(f"helm ({label}): retention not in the aggregator configuration")
        for o in values["outputs"]:
            if f'forward: "{o}"' not in agg:
                fail(f"helm ({label}): output {o} not in the aggregator configuration")
        for i in values["aggregator"]["identities"]:
            if f"identities {{ {i} }}" not in agg:
                fail(f"helm ({label}): identity {i} not in the aggregator configuration")
        sts = [d for d in docs if d and d["kind"] == "StatefulSet"][0]
        c = sts["spec"]["template"]["spec"]["containers"][0]
        img = values["aggregator"]["image"]
        if c["image"] != f"{img['repository']}:{img['tag']}":
            fail(f"helm ({label}): aggregator image {c['image']}")
        if c["resources"] != values["aggregator"]["resources"]:
            fail(f"helm ({label}): aggregator resources {c['resources']}")
        secret = sts["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
        want = values["tls"]["existingSecret"] or "tl-aggregator-tls"
        if secret != want:
            fail(f"helm ({label}): TLS secret {secret}, want {want}")
        consoles = [d for d in docs if d and d["kind"] == "Deployment"]
        if bool(consoles) != values["console"]["enabled"]:
            fail(f"helm ({label}): console deployment present={bool(consoles)}")
        checked += len([d for d in docs if d])

    if BIN_DIR and shutil.which("systemd-analyze"):
        with tempfile.TemporaryDirectory() as tmp:
            units = []
            for unit, binary in (("tripline-sensor.service", "/usr/sbin/tripline-sensor"),
                                 ("tripline-aggregator.service", "/usr/bin/tripline-aggregator")):
                text = open(os.path.join(ROOT, "deploy/systemd", unit)).read()
                path = os.path.join(tmp, unit)
                with open(path, "w") as f:
                    f.write(text.replace(binary, os.path.join(BIN_DIR, os.path.basename(binary))))
                units.append(path)
            p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
            noise = [l for l in p.stderr.splitlines() if l.strip()]
            if p.returncode != 0 or noise:
                fail("systemd-analyze verify: " + (p.stderr or p.stdout))
    elif BIN_DIR:
        fail("systemd-analyze not found (package systemd)")

    for f in failures:
        print("FAIL:", f)
    print(f"check_deploy: {checked} Kubernetes objects checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
