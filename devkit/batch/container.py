"""Each attempt as a container of the image, started the way AWS Batch starts it.

`ContainerLauncher` turns an attempt into `podman run` of one image with what
the job definition's ContainerProperties say (engine.ContainerSpec, read from
infra/template.yaml by stack.py): a read-only root (and no other writable path
podman would add by itself), an init process as PID 1, the user, a fresh
volume for each scratch mount (which, as on Fargate, starts as a copy of the
image's directory there, mode included), and the job's environment: the job
definition's, the submission's overrides and Batch's own variables. The
container shares this machine's network, so the local Batch API, S3, market
stub and database on loopback are where the job's environment says.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
from collections.abc import Mapping, Sequence

from devkit.batch.engine import Job

PODMAN = ("podman", "--runtime", "runc")
KILL_TIMEOUT_SECONDS = 30.0
# Podman raises RLIMIT_NPROC past what this machine's sandbox lets a container set;
# ask for the limit a process here has, capped at a number any sandbox grants.
NPROC = 4096


def container_name(job: Job, attempt: int) -> str:
    """A name podman accepts and a person can find the job by: array children are `id:n`."""
    return f"worthy-{re.sub(r'[^A-Za-z0-9_.-]', '-', job.job_id)}-{attempt}"


def ulimits() -> list[str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    procs = min(NPROC, resource.getrlimit(resource.RLIMIT_NPROC)[0])
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", f"nproc={procs}:{procs}"]


class ContainerLauncher:
    """`podman run IMAGE COMMAND` for each attempt, as the job definition starts it."""

    def __init__(
        self,
        image: str,
        *,
        engine: Sequence[str] = PODMAN,
        host_env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
    ) -> None:
        self.image = image
        self._engine = list(engine)
        self._entrypoint = None if entrypoint is None else list(entrypoint)  # else the image's
        # What podman itself needs (PATH, ...); the container gets only the job's variables.
        self._host_env = dict(os.environ if host_env is None else host_env)

    def run_arguments(self, job: Job, attempt: int, names: Sequence[str]) -> list[str]:
        """`podman run` up to the image: how the job definition starts the container."""
        spec = job.definition.container
        argv = [*self._engine, "run", "--rm", "--name", container_name(job, attempt)]
        argv += ["--network", "host", "--pull", "never", *ulimits()]
        if spec.read_only_root:
            # Podman would mount a tmpfs on /tmp, /var/tmp and /run; Batch mounts nothing.
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if spec.init_process:
            argv.append("--init")
        if spec.user is not None:
            argv += ["--user", spec.user]
        for path in spec.scratch:
            argv += ["--mount", f"type=volume,dst={path}"]
        if self._entrypoint is not None:
            argv += ["--entrypoint", json.dumps(self._entrypoint)]
        for name in names:  # by name: the values reach podman's environment, not its argv
            argv += ["--env", name]
        return argv

    def command(
        self, job: Job, attempt: int, env: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        argv = self.run_arguments(job, attempt, sorted(env))
        return [*argv, self.image, *job.command], {**self._host_env, **env}

    def kill(self, job: Job, attempt: int) -> None:
        """Kill the container, not only the client: a killed `podman run` leaves it running."""
        subprocess.run(
            [*self._engine, "kill", "--signal", "KILL", container_name(job, attempt)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=KILL_TIMEOUT_SECONDS,
            check=False,
        )
        if job.process is not None:
            job.process.kill()
