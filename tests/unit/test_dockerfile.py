"""The image, checked statically: what `make image-test` cannot show.

`make image-test` (devkit/image_test.py, run by CI) builds docker/Dockerfile on
a base made from Debian packages and the image test's stand-in RDS bundle, and
plays a day in it. What that build does not exercise, production's pins (the
base image's tag and digest, the bundle's URL and checksum, the frontend's
digest), and what is cheaper to say from the text (a root user, a baked-in
secret, a COPY of a path that is not in the build context) is checked here.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch

import pytest

from common.adapters.db import RDS_CA_BUNDLE
from common.platform.config import Settings
from devkit.image_test import RDS_CA_STAND_IN
from entry.cli import build_parser
from tests.cfn import ROOT, load_template, resources_of_type

DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"

SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|DATABASE_URL|DSN", re.I)
PINNED_TAG = re.compile(r":\d+\.\d+\.\d+[\w.-]*$")
PINNED_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return instructions


@dataclass(frozen=True)
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction]


def stages(instructions: list[Instruction]) -> list[Stage]:
    """Build stages with `${ARG}` in FROM resolved from the global ARG defaults."""
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.args.partition("=")
            global_args[name] = default
        elif instruction.keyword == "FROM":
            image, *rest = instruction.args.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], image)
            name = rest[1] if len(rest) == 2 and rest[0].upper() == "AS" else None
            found.append(Stage(image, name, []))
        elif found:
            found[-1].instructions.append(instruction)
    return found


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text("utf-8"))


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> Stage:
    return stages(instructions)[-1]


def test_the_build_has_a_build_stage_and_a_separate_runtime_stage(
    instructions: list[Instruction],
) -> None:
    built = stages(instructions)
    assert len(built) >= 2
    assert any(
        i.keyword == "COPY" and i.args.startswith("--from=") for i in built[-1].instructions
    ), "the runtime stage copies the installed environment from the build stage"


def test_every_base_image_is_pinned_to_an_exact_release_and_its_digest(
    instructions: list[Instruction],
) -> None:
    built = stages(instructions)
    names = {stage.name for stage in built}
    for stage in built:
        if stage.image in names or stage.image == "scratch":  # scratch: empty, nothing to pin
            continue
        assert "python" in stage.image and "slim" in stage.image, stage.image
        tag, _, _ = stage.image.partition("@")
        assert PINNED_TAG.search(tag), f"{stage.image}: pin an exact X.Y.Z tag"
        assert PINNED_DIGEST.search(stage.image), f"{stage.image}: pin the digest too"


def test_the_dockerfile_frontend_is_pinned_by_digest() -> None:
    """`# syntax=` makes BuildKit pull a frontend image before anything else runs."""
    first = DOCKERFILE.read_text("utf-8").splitlines()[0]
    assert re.fullmatch(r"# syntax=docker/dockerfile:\d+\.\d+@sha256:[0-9a-f]{64}", first), first


def test_every_download_is_pinned_by_checksum(instructions: list[Instruction]) -> None:
    """A remote ADD is re-fetched whenever BuildKit decides to; --checksum makes a changed
    file fail the build instead of entering the image."""
    for instruction in instructions:
        if instruction.keyword == "ADD":
            assert re.search(r"--checksum=sha256:[0-9a-f]{64}\b", instruction.args), instruction
        if instruction.keyword == "RUN":
            assert not re.search(r"\b(curl|wget)\b", instruction.args), instruction


def test_the_rds_ca_bundle_is_awss_by_default_and_where_the_code_looks_for_it(
    instructions: list[Instruction], final: Stage
) -> None:
    """AWS's global bundle, from the URL its TLS page gives:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html
    It comes through the stage `FROM ${RDS_CA_SOURCE} AS rds-ca`, whose default
    (what a build without build arguments, infra/deploy.sh's, gets) downloads it."""
    built = {stage.name: stage for stage in stages(instructions)}
    chosen = built["rds-ca"].image  # the build argument's default, resolved
    assert chosen == "rds-ca-aws", chosen
    adds = [i.args.split() for i in built[chosen].instructions if i.keyword == "ADD"]
    assert len(adds) == 1 and RDS_CA_URL in adds[0], adds
    assert "--chmod=0444" in adds[0], "ADD of a URL writes 0600 root: unreadable by uid 10001"
    copies = [
        i.args.split()
        for i in final.instructions
        if i.keyword == "COPY" and i.args.startswith("--from=rds-ca ")
    ]
    assert len(copies) == 1, copies
    assert copies[0][-2:] == [adds[0][-1], RDS_CA_BUNDLE]
    assert "--chmod=0444" in copies[0]


def test_the_image_tests_stand_in_bundle_ships_only_when_a_build_argument_names_it(
    instructions: list[Instruction], final: Stage
) -> None:
    built = {stage.name: stage for stage in stages(instructions)}
    assert RDS_CA_STAND_IN in built, "make image-test names a stage the Dockerfile has"
    assert built["rds-ca"].image != RDS_CA_STAND_IN
    sources = [
        i.args.split()[0] for s in built.values() for i in s.instructions if i.keyword == "COPY"
    ]
    assert f"--from={RDS_CA_STAND_IN}" not in sources, "only through FROM ${RDS_CA_SOURCE}"


def test_the_image_runs_as_a_non_root_user_that_it_creates(final: Stage) -> None:
    users = [i.args for i in final.instructions if i.keyword == "USER"]
    assert users, "the runtime stage never leaves root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    created = " ".join(i.args for i in final.instructions if i.keyword == "RUN")
    assert re.search(rf"useradd\b.*(--uid {user}\b|\b{user}$)", created), created


def test_no_secret_is_baked_into_the_image(instructions: list[Instruction]) -> None:
    secret_variables = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for assignment in shlex.split(instruction.args):
                name = assignment.split("=", 1)[0]
                assert not SECRET_NAME.search(name), f"{instruction.keyword} {name}"
                assert name not in secret_variables
        if instruction.keyword in ("COPY", "ADD"):
            assert ".env" not in instruction.args
            assert not instruction.args.startswith(". "), "COPY . copies the whole context"


def test_the_build_context_is_an_allow_list(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore starts by excluding everything"
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for instruction in instructions:
        if instruction.keyword != "COPY" or instruction.args.startswith("--from="):
            continue
        *sources, _ = instruction.args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            top = source.split("/")[0]
            assert any(fnmatch(top, a) for a in allowed), f"{source} is not in .dockerignore"


def test_dependencies_come_from_the_lock_with_hashes(instructions: list[Instruction]) -> None:
    installs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
    assert installs, "nothing is installed?"
    for install in installs:
        from_lock = "--require-hashes" in install and "-r requirements.lock" in install
        # The project itself: no dependencies, no index, and no build isolation, which would
        # otherwise download an unpinned setuptools to build it.
        project = all(f in install for f in ("--no-deps", "--no-build-isolation", "--no-index"))
        assert from_lock or project, install
    assert any("--no-build-isolation" in i and i.rstrip().split(" && ")[0].endswith(" .")
               for i in installs), "the project installs without re-resolving"  # fmt: skip


def test_the_lock_pins_the_build_backend_with_hashes() -> None:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["build-system"]
    wanted = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in build["requires"]}
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", LOCK.read_text("utf-8"), re.M))
    assert wanted <= {name.lower() for name in pins}, wanted - set(pins)
    assert "--build-deps-for wheel" in (ROOT / "Makefile").read_text("utf-8"), "make lock keeps it"


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    wanted = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    text = LOCK.read_text("utf-8")
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M))
    assert wanted <= {name.lower() for name in pins}, wanted - set(pins)
    blocks = re.split(r"\n(?=[A-Za-z])", text.split("\n", 6)[-1])
    for block in blocks:
        if "==" in block:
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_every_scratch_mount_is_a_volume_the_non_root_user_can_write(final: Stage) -> None:
    """With a read-only root, the job definitions mount a bind volume for writes. Fargate
    makes such a mount root-owned 0755 unless the image declares the path as a VOLUME, whose
    directory (mode included) it copies in:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html"""
    volumes = set()
    for instruction in final.instructions:
        if instruction.keyword == "VOLUME":
            volumes |= set(json.loads(instruction.args))
    runs = " ".join(i.args for i in final.instructions if i.keyword == "RUN")
    for name, props in resources_of_type(load_template(), "AWS::Batch::JobDefinition").items():
        for mount in props["ContainerProperties"]["MountPoints"]:
            path = mount["ContainerPath"]
            assert path in volumes, f"{name}: {path} is not a VOLUME of the image"
            assert re.search(rf"chmod 1777 {re.escape(path)}\b", runs), f"{path} not 1777"


def test_the_entrypoint_is_the_installed_console_script(final: Stage) -> None:
    entrypoints = [i.args for i in final.instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["worthy-batch"], "exec form, the console script"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert scripts["worthy-batch"] == "entry.cli:start"
    path = [i.args for i in final.instructions if i.keyword == "ENV" and "PATH=" in i.args]
    venv = re.search(r"PATH=(\S+)/bin:", path[-1])
    assert venv, "PATH puts the installed environment first"
    copied = [i.args for i in final.instructions if i.keyword == "COPY"]
    assert any(c.endswith(f" {venv.group(1)}") for c in copied)


def test_every_job_definition_runs_a_real_subcommand() -> None:
    definitions = resources_of_type(load_template(), "AWS::Batch::JobDefinition")
    assert len(definitions) == 4  # plan, execute, finalize, watchdog
    parser = build_parser()
    for name, props in definitions.items():
        command = props["ContainerProperties"]["Command"]
        # Batch replaces Ref::name placeholders with the job's parameters.
        argv = ["XNYS-20261127" if arg.startswith("Ref::") else arg for arg in command]
        args = parser.parse_args(argv)
        assert args.command == command[0], name
        assert getattr(args, "handler", None), f"{name}: {command} has no handler"
        for arg in command:
            if arg.startswith("Ref::"):
                assert arg.removeprefix("Ref::") in props.get("Parameters", {}), (name, arg)


def test_the_build_compiles_every_module_the_read_only_containers_will_import(
    instructions: list[Instruction], final: Stage
) -> None:
    # The job definitions make the root filesystem read-only: a .pyc that is not in
    # the image is compiled again by every child that imports its module.
    build = stages(instructions)[0]
    runs = [i.args for i in build.instructions if i.keyword == "RUN"]
    installed = next(n for n, r in enumerate(runs) if "pip install" in r and " . " in f"{r} ")
    compiled = [
        n
        for n, r in enumerate(runs)
        if "compileall" in r
        and "/opt/worthy-batch" in r
        and "unchecked-hash" in r
        # -f: pip wrote timestamp-checked .pyc files already, which compileall would keep
        and " -f " in f" {r} "
    ]
    assert compiled and compiled[0] > installed, "compileall after the project is installed"
    copies = [i.args for i in final.instructions if i.keyword == "COPY"]
    assert any(c.startswith("--from=build /opt/worthy-batch") for c in copies)
    environment = " ".join(i.args for i in final.instructions if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in environment  # nothing to write, and nowhere to
