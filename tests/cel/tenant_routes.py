# Not run by cargo or CI (needs Python with pyyaml and cel-python):
#   python3 tests/cel/tenant_routes.py tests/golden/apps/manifests/deploykf-core/deploykf-istio-gateway/ValidatingAdmissionPolicy-tenant-routes.yaml
# cel-python stands in for the API server's cel-go; lowerAscii (a Kubernetes CEL
# string extension) is supplied here. Evaluates the rendered policy (issue 28,
# point 1) on sample VirtualServices of the profile namespace kf-research; the
# same cases are modelled in tests/auth/tenant.rs (`tenant_routes_admit`).
# With `gateway.wildcardHost` (issue 27; e.g. tests/golden/kserve-wildcard) it
# also evaluates KServe's VirtualService for an InferenceService.
import sys, yaml, celpy
from celpy import celtypes
docs = list(yaml.safe_load_all(open(sys.argv[1])))
vap = docs[0]["spec"]
env = celpy.Environment()
def lower_ascii(s): return celtypes.StringType(str(s).lower())
funcs = {"lowerAscii": lower_ascii}
def check(vs):
    act = {"object": celpy.json_to_cel(vs)}
    variables = {}
    for v in vap["variables"]:
        act["variables"] = celtypes.MapType({celtypes.StringType(k): x for k, x in variables.items()})
        variables[v["name"]] = env.program(env.compile(v["expression"]), functions=funcs).evaluate(act)
    act["variables"] = celtypes.MapType({celtypes.StringType(k): x for k, x in variables.items()})
    return all(bool(env.program(env.compile(x["expression"]), functions=funcs).evaluate(act)) for x in vap["validations"])
import json
var = {v["name"]: v["expression"] for v in vap["variables"]}
GW = json.loads(var["platformGateways"])[0]
HOST = json.loads(var["tenantHosts"])[0]
GW_NS, GW_NAME = GW.split("/")
def vs(http=None, gateways=(GW,), hosts=(HOST,), **extra):
    spec = {"hosts": list(hosts), "gateways": list(gateways)}
    if http is not None: spec["http"] = http
    spec.update(extra)
    return {"metadata": {"namespace": "kf-research", "name": "x"}, "spec": spec}
def prefix(p, **m): return {"match": [dict({"uri": {"prefix": p}}, **m)], "route": [{"destination": {"host": "x"}}]}
cases = [
  ("notebook (Kubeflow's shape)", vs([prefix("/notebook/kf-research/nb/")], hosts=["*"]), True),
  ("tensorboard", vs([prefix("/tensorboard/kf-research/tb/")]), True),
  ("exact under own prefix", vs([{"match": [{"uri": {"exact": "/serving/kf-research/m"}}]}]), True),
  ("mesh only, any path", vs([prefix("/api/")], gateways=["mesh"]), True),
  ("own gateway, any path", vs([prefix("/api/")], gateways=["kf-research/mine"]), True),
  ("/api/ on the platform host", vs([prefix("/api/")]), False),
  ("catch-all /", vs([prefix("/")]), False),
  ("no match", vs([{"route": [{"destination": {"host": "x"}}]}]), False),
  ("header match only", vs([{"match": [{"headers": {"x": {"exact": "1"}}}]}]), False),
  ("regex", vs([{"match": [{"uri": {"regex": "/api/.*"}}]}]), False),
  ("another namespace's notebooks", vs([prefix("/notebook/kf-analytics/")]), False),
  ("prefix without the slash", vs([prefix("/notebook/kf-research")]), False),
  ("second match escapes", vs([{"match": [{"uri": {"prefix": "/notebook/kf-research/a/"}}, {"uri": {"prefix": "/"}}]}]), False),
  ("legacy FQDN gateway name", vs([prefix("/api/")], gateways=[GW_NAME + "." + GW_NS + ".svc.cluster.local"]), False),
  ("legacy short FQDN", vs([prefix("/api/")], gateways=[GW_NAME + "." + GW_NS]), False),
  ("bound in a match only", vs([prefix("/api/", gateways=[GW])], gateways=["mesh"]), False),
  ("another host", vs([prefix("/notebook/kf-research/a/")], hosts=["minio-console.deploykf.example.com"]), False),
  ("wildcard subdomain", vs([prefix("/notebook/kf-research/a/")], hosts=["*.example.com"]), False),
  ("host in capitals", vs([prefix("/notebook/kf-research/a/")], hosts=[HOST.split(".")[0].upper() + HOST[HOST.index("."):]]), True),
  ("tcp route", vs([], tcp=[{"route": [{"destination": {"host": "x"}}]}]), False),
]
# `gateway.wildcardHost` (issue 27): KServe's VirtualService for
# InferenceService m of kf-research (kserve v0.16.0 ingress_reconciler.go
# createIngress; the same shape as tests/auth/tenant.rs kserve_virtual_service).
if "tenantHost" in var:
    def q(h): return "^" + h.replace(".", "\\.") + "(?::\\d{1,5})?$"
    LOCAL = "knative-serving/knative-local-gateway"
    own = "m-kf-research." + HOST
    def isvc(hosts=None, authority=None, name="m"):
        v = vs([
            {"match": [{"authority": {"regex": "^m(\\.kf-research(\\.svc(\\.cluster\\.local)?)?)?(?::\\d{1,5})?$"}, "gateways": [LOCAL, "mesh"]},
                       {"authority": {"regex": authority or q(own)}, "gateways": [GW]}],
             "route": [{"destination": {"host": "knative-local-gateway.istio-system.svc.cluster.local"}}]},
            {"match": [{"uri": {"prefix": "/serving/kf-research/m/"}, "authority": {"regex": q(HOST)}, "gateways": [GW]},
                       {"uri": {"exact": "/serving/kf-research/m"}, "authority": {"regex": q(HOST)}, "gateways": [GW]}],
             "rewrite": {"uri": "/"}, "route": [{"destination": {"host": "x"}}]},
        ], gateways=[LOCAL, "mesh", GW], hosts=hosts or ["m.kf-research.svc.cluster.local", own, HOST])
        v["metadata"]["name"] = name
        return v
    cases += [
        ("kserve: its inference service", isvc(), True),
        ("kserve: another namespace's host", isvc(hosts=["m-kf-other." + HOST]), False),
        ("kserve: another name's host", isvc(name="n"), False),
        ("kserve: any authority", isvc(authority=".*"), False),
        ("kserve: the platform host by authority", isvc(authority=q(HOST)), False),
        ("kserve: another namespace's local host", isvc(hosts=["m.kf-other.svc.cluster.local"]), False),
    ]
bad = 0
for name, v, want in cases:
    got = check(v)
    print(("ok  " if got == want else "FAIL"), name, "admitted" if got else "refused")
    bad += got != want
sys.exit(bad)
