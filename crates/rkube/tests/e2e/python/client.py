"""Drives rkube with the official Python client (`kubernetes` on PyPI), unchanged.

Usage: client.py KUBECONFIG NAMESPACE. Prints one line per step; exits non-zero (with a
traceback) on the first failure.
"""
import sys
import threading

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

kubeconfig, ns = sys.argv[1], sys.argv[2]
api_client = config.new_client_from_config(config_file=kubeconfig)
core = client.CoreV1Api(api_client)
apps = client.AppsV1Api(api_client)


def step(name):
    print("ok", name, flush=True)


# list and create
core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
names = [n.metadata.name for n in core.list_namespace().items]
assert ns in names and "default" in names, names
step("namespaces")

cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings", labels={"app": "py"}), data={"mode": "blue"})
created = core.create_namespaced_config_map(ns, cm)
assert created.metadata.uid and created.metadata.resource_version, created.metadata
got = core.read_namespaced_config_map("settings", ns)
assert got.data == {"mode": "blue"}, got.data
listed = core.list_namespaced_config_map(ns, label_selector="app=py")
assert [c.metadata.name for c in listed.items] == ["settings"], listed.items
step("configmap create/read/list")

# watch: start from the list's resourceVersion, make a change, see it
events = []
w = watch.Watch()


def watch_cms():
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version, timeout_seconds=20):
        events.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("mode")))
        if ev["type"] == "DELETED":
            w.stop()


t = threading.Thread(target=watch_cms)
t.start()

# patch (strategic merge is the client's default for a dict body)
patched = core.patch_namespaced_config_map("settings", ns, {"data": {"mode": "green"}})
assert patched.data["mode"] == "green", patched.data
step("configmap patch")

# a deployment through AppsV1Api
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx")]),
        ),
    ),
)
d = apps.create_namespaced_deployment(ns, dep)
assert d.spec.strategy.type == "RollingUpdate", d.spec.strategy  # server-side defaults
d = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
assert d.spec.replicas == 4, d.spec
assert apps.read_namespaced_deployment("web", ns).spec.replicas == 4
deps = apps.list_namespaced_deployment(ns)
assert [x.metadata.name for x in deps.items] == ["web"]
step("deployment create/scale/list")

# errors arrive as ApiException with the Status code
try:
    core.read_namespaced_config_map("missing", ns)
    raise AssertionError("expected 404")
except ApiException as e:
    assert e.status == 404, e.status
try:
    core.create_namespaced_config_map(ns, cm)
    raise AssertionError("expected 409")
except ApiException as e:
    assert e.status == 409, e.status
step("errors")

# the dynamic client, through discovery
dyn = dynamic.DynamicClient(api_client)
deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
web = deployments.get(name="web", namespace=ns)
assert web.spec.replicas == 4, web.spec
secrets = dyn.resources.get(api_version="v1", kind="Secret")
secrets.create(body={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}, namespace=ns)
s = secrets.get(name="s", namespace=ns)
assert s.data["k"] == "dg==", s.data
secrets.patch(name="s", namespace=ns, body={"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json")
assert secrets.get(name="s", namespace=ns).metadata.labels["x"] == "y"
secrets.delete(name="s", namespace=ns)
step("dynamic client")

# delete, and the watch saw it all
core.delete_namespaced_config_map("settings", ns)
apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")
t.join(30)
assert not t.is_alive(), "the watch did not end"
kinds = [e[0] for e in events]
assert ("MODIFIED", "settings", "green") in events, events
assert kinds[-1] == "DELETED", events
step("watch and delete")
