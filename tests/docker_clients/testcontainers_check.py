"""testcontainers (Python) against the daemon in DOCKER_HOST: a container started the way test
suites start theirs, a command run in it, and the container gone afterwards. Its reaper (Ryuk)
is disabled by TESTCONTAINERS_RYUK_DISABLED=true: no image can be pulled here. Prints
`name<TAB>json` lines, as docker_py.py does.
"""

import json

import docker
from testcontainers.core.container import DockerContainer


def report(name, step):
    try:
        value = step()
    except Exception as e:  # the error is the result to compare
        value = "error: %s: %s" % (type(e).__name__, e)
    print("%s\t%s" % (name, json.dumps(value, sort_keys=True)), flush=True)


def container_with_exec():
    with DockerContainer("busybox").with_command("sleep 300").with_env("GREETING", "hi") as container:
        result = container.exec(["sh", "-c", "echo $GREETING from testcontainers; exit 2"])
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        status = wrapped.status
        labels = sorted(k for k in wrapped.labels if k.startswith("org.testcontainers"))
    left = [c.name for c in docker.from_env().containers.list(all=True)]
    return {"exit_code": result.exit_code, "output": result.output.decode(), "status": status,
            "labels": labels, "left": left}


report("testcontainers: a container with an exec", container_with_exec)
