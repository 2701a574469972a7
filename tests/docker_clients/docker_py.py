"""docker-py (the `docker` package on PyPI) against the daemon in DOCKER_HOST: what a Python
program does daily. Prints one line per result, `name<TAB>json`, for tests/docker_clients.rs to
compare between dockerd and berth. A step that fails prints its error and the script goes on.

Usage: python docker_py.py BUILD_CONTEXT_DIR
"""

import json
import socket
import struct
import sys
import time

import docker

client = docker.from_env(timeout=60)
BUILD_CONTEXT = sys.argv[1]
HTTP_SERVER = "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello-from-srv\\n' | nc -l -p 8080; done"
HTTP_GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 srv 8080"


def report(name, step):
    try:
        value = step()
    except Exception as e:  # the error is the result to compare
        value = "error: %s: %s" % (type(e).__name__, e)
    print("%s\t%s" % (name, json.dumps(value, sort_keys=True)), flush=True)


def run_output():
    return client.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"], remove=True).decode()


def run_failure():
    try:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    except docker.errors.ContainerError as e:
        return ["ContainerError", e.exit_status]
    return "no error"


def detached():
    container = client.containers.run(
        "busybox",
        ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; sleep 300"],
        detach=True,
        name="pydetached",
        labels={"from": "docker-py"},
    )
    seen = b""
    for chunk in container.logs(stream=True, follow=True):
        seen += chunk
        if seen.count(b"\n") >= 3:
            break
    exec_result = container.exec_run(["sh", "-c", "echo exec-out; echo $FOO; pwd; exit 3"],
                                     environment={"FOO": "bar"}, workdir="/tmp")
    container.reload()
    status_before = container.status
    listed = [c.name for c in client.containers.list(filters={"label": "from=docker-py"})]
    container.kill()
    waited = container.wait(timeout=30)
    container.reload()
    result = {
        "logs_stream": seen.decode(),
        "exec_run": [exec_result.exit_code, exec_result.output.decode()],
        "status": [status_before, container.status],
        "listed": listed,
        "wait": waited["StatusCode"],
        "labels": container.labels,
    }
    container.remove()
    return result


def build():
    image, logs = client.images.build(path=BUILD_CONTEXT, tag="pybuilt:v1", rm=True)
    streamed = "".join(entry.get("stream", "") for entry in logs)
    return {
        "tags": image.tags,
        "says_built": "Successfully built" in streamed,
        "run": client.containers.run("pybuilt:v1", remove=True).decode(),
    }


def volumes():
    volume = client.volumes.create("pyvolume", labels={"from": "docker-py"})
    client.containers.run("busybox", ["sh", "-c", "echo kept > /v/f"],
                          volumes={"pyvolume": {"bind": "/v", "mode": "rw"}}, remove=True)
    read = client.containers.run("busybox", ["cat", "/v/f"], volumes=["pyvolume:/v:ro"], remove=True).decode()
    names = [v.name for v in client.volumes.list(filters={"label": "from=docker-py"})]
    volume.remove()
    return {"name": volume.name, "driver": volume.attrs["Driver"], "read": read, "listed": names}


def networks():
    network = client.networks.create("pynet", driver="bridge")
    other = client.networks.create("pyother", driver="bridge")
    server = client.containers.run("busybox", ["sh", "-c", HTTP_SERVER], detach=True, name="srv", network="pynet")
    peer = client.containers.run("busybox", ["sleep", "300"], detach=True, name="peer", network="pyother")
    network.connect(peer)
    answer = ""
    for _ in range(20):
        result = peer.exec_run(["sh", "-c", HTTP_GET])
        answer = result.output.decode()
        if "hello-from-srv" in answer:
            break
        time.sleep(0.5)
    network.reload()
    members = sorted(c.name for c in network.containers)
    network.disconnect(peer)
    peer.reload()
    networks_after = sorted(peer.attrs["NetworkSettings"]["Networks"])
    for c in (server, peer):
        c.remove(force=True)
    network.remove()
    other.remove()
    return {"reached": answer.strip().splitlines()[-1:], "members": members, "after_disconnect": networks_after}


def read_frames(sock):
    """The multiplexed stream: 8-byte headers (stream, 0, 0, 0, big-endian length)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    out = {1: b"", 2: b""}
    while len(data) >= 8:
        kind, length = struct.unpack(">BxxxL", data[:8])
        out[kind] = out.get(kind, b"") + data[8:8 + length]
        data = data[8 + length:]
    return {"stdout": out[1].decode(), "stderr": out[2].decode(), "trailing": len(data)}


def exec_socket():
    container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pysocket")
    exec_id = client.api.exec_create(container.id, ["sh", "-c", "cat; echo done >&2"], stdin=True)["Id"]
    sock = client.api.exec_start(exec_id, socket=True)
    raw = sock._sock
    raw.settimeout(30)
    raw.sendall(b"through the socket\n")
    raw.shutdown(socket.SHUT_WR)
    frames = read_frames(raw)
    raw.close()
    inspected = client.api.exec_inspect(exec_id)
    container.remove(force=True)
    return {"frames": frames, "exit_code": inspected["ExitCode"], "running": inspected["Running"]}


def errors():
    out = {}
    try:
        client.containers.get("nosuch")
    except docker.errors.NotFound as e:
        out["get"] = [e.status_code, e.explanation]
    try:
        client.images.get("nosuch:v1")
    except docker.errors.ImageNotFound as e:
        # Engine 20.10 says "no such image: nosuch:v1: No such image: nosuch:v1", later ones
        # only the second half: the part both say is compared.
        out["image"] = [e.status_code, "No such image: nosuch:v1" in e.explanation]
    client.containers.run("busybox", ["sleep", "300"], detach=True, name="taken")
    try:
        client.containers.create("busybox", name="taken")
    except docker.errors.APIError as e:
        out["conflict"] = e.status_code
    client.containers.get("taken").remove(force=True)
    return out


report("version: API >= 1.41", lambda: float(client.version()["ApiVersion"]) >= 1.41)
report("ping", client.ping)
report("run with output", run_output)
report("run with a failing command", run_failure)
report("detach, logs stream, exec_run, wait", detached)
report("build from a path", build)
report("volumes", volumes)
report("networks", networks)
report("exec socket with stdin", exec_socket)
report("errors", errors)
