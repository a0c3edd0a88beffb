# Not run by cargo or CI (needs Python with pyyaml and cel-python):
#   python3 tests/cel/identity_headers.py tests/golden/apps/manifests/deploykf-core/deploykf-istio-gateway/ValidatingAdmissionPolicy-identity-headers.yaml
# cel-python stands in for the API server's cel-go; lowerAscii (a Kubernetes CEL
# string extension) is supplied here.
# Evaluates the rendered ValidatingAdmissionPolicy's CEL on sample VirtualServices.
import sys, yaml, celpy, json
from celpy import celtypes
docs = list(yaml.safe_load_all(open(sys.argv[1])))
vap = docs[0]["spec"]
env = celpy.Environment()
def lower_ascii(s): return celtypes.StringType(str(s).lower())
funcs = {"lowerAscii": lower_ascii}
headers = env.program(env.compile(vap["variables"][0]["expression"]), functions=funcs).evaluate({})
prog = env.program(env.compile(vap["validations"][0]["expression"]), functions=funcs)
def check(vs):
    act = {"object": celpy.json_to_cel(vs), "variables": celtypes.MapType({celtypes.StringType("identityHeaders"): headers})}
    return bool(prog.evaluate(act))
dest = {"destination": {"host": "nb.kf-analytics.svc.cluster.local"}}
cases = [
  ("no http", {"spec": {"tcp": []}}, True),
  ("plain route", {"spec": {"http": [{"route": [dest]}]}}, True),
  ("other header set", {"spec": {"http": [{"headers": {"request": {"set": {"x-foo": "1"}}}, "route": [dest]}]}}, True),
  ("response header", {"spec": {"http": [{"headers": {"response": {"set": {"kubeflow-userid": "1"}}}, "route": [dest]}]}}, True),
  ("set on route", {"spec": {"http": [{"headers": {"request": {"set": {"kubeflow-userid": "x"}}}, "route": [dest]}]}}, False),
  ("set mixed case", {"spec": {"http": [{"headers": {"request": {"set": {"Kubeflow-Userid": "x"}}}, "route": [dest]}]}}, False),
  ("add on destination", {"spec": {"http": [{"route": [dict(dest, headers={"request": {"add": {"kubeflow-groups": "admins"}}})]}]}}, False),
  ("remove on route", {"spec": {"http": [{"headers": {"request": {"remove": ["kubeflow-userid"]}}, "route": [dest]}]}}, False),
  ("second route sets", {"spec": {"http": [{"route": [dest]}, {"route": [dest, dict(dest, headers={"request": {"set": {"KUBEFLOW-GROUPS": "a"}}})]}]}}, False),
]
bad = 0
for name, vs, want in cases:
    got = check(vs)
    print(("ok  " if got == want else "FAIL"), name, "admitted" if got else "refused")
    bad += got != want
sys.exit(bad)
