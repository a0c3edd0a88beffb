# Not run by cargo or CI (needs Python with pyyaml and cel-python):
#   python3 tests/cel/tenant_routes.py tests/golden/apps/manifests/deploykf-core/deploykf-istio-gateway/ValidatingAdmissionPolicy-tenant-routes.yaml
# cel-python stands in for the API server's cel-go; lowerAscii (a Kubernetes CEL
# string extension) is supplied here. Evaluates the rendered policy (issue 28,
# point 1) on sample VirtualServices of the profile namespace kf-research; the
# same cases are modelled in tests/auth/tenant.rs (`tenant_routes_admit`).
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
GW = "deploykf-istio-gateway/deploykf-gateway"
HOST = "deploykf.example.com"
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
  ("legacy FQDN gateway name", vs([prefix("/api/")], gateways=["deploykf-gateway.deploykf-istio-gateway.svc.cluster.local"]), False),
  ("legacy short FQDN", vs([prefix("/api/")], gateways=["deploykf-gateway.deploykf-istio-gateway"]), False),
  ("bound in a match only", vs([prefix("/api/", gateways=[GW])], gateways=["mesh"]), False),
  ("another host", vs([prefix("/notebook/kf-research/a/")], hosts=["minio-console.deploykf.example.com"]), False),
  ("wildcard subdomain", vs([prefix("/notebook/kf-research/a/")], hosts=["*.example.com"]), False),
  ("host in capitals", vs([prefix("/notebook/kf-research/a/")], hosts=["DEPLOYKF.example.com"]), True),
  ("tcp route", vs([], tcp=[{"route": [{"destination": {"host": "x"}}]}]), False),
]
bad = 0
for name, v, want in cases:
    got = check(v)
    print(("ok  " if got == want else "FAIL"), name, "admitted" if got else "refused")
    bad += got != want
sys.exit(bad)
