"""infra/template.yaml read as data: the dev kit's Batch emulator and the tests share it.

CloudFormation's short-form tags (`!Ref`, `!Sub`, `!GetAtt`, ...) become the
long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`), which is also what moto's
CloudFormation accepts as a JSON template body. `resolve` evaluates the
intrinsics the stack uses, with parameter defaults unless told otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.yaml"

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "worthy-batch",
}
_NO_VALUE = object()  # AWS::NoValue: the item or property is left out


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text("utf-8"), Loader=_CfnLoader)
    return loaded


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of every resource of one type."""
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def resolve(
    template: dict[str, Any],
    value: Any,
    parameters: Mapping[str, Any] | None = None,
    resources: Mapping[str, str] | None = None,
) -> Any:
    """Evaluate the intrinsics the stack uses, with parameter defaults unless given.

    A reference to a resource resolves to `resources[name]` when given, else
    stays symbolic (`<Name>`, `<Name.Attr>`), so a test can say which resource a
    value points at and the emulator can tell a local value from an AWS one.
    """
    given = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
    given |= dict(parameters or {})
    known = dict(resources or {})

    def ref(name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in given:
            return given[name]
        return known.get(name, f"<{name}>")

    def condition(name: str) -> bool:
        return bool(walk(template["Conditions"][name]))

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(walk, node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return ref(arg)
            if key == "Fn::GetAtt":
                name = ".".join(arg)
                return known.get(name, f"<{name}>")
            if key == "Fn::Sub":
                return re.sub(r"\$\{([\w:.]+)\}", lambda m: sub_one(m.group(1)), arg)
            if key == "Fn::If":
                name, then, otherwise = arg
                return walk(then if condition(name) else otherwise)
            if key == "Fn::Not":
                return not walk(arg[0])
            if key == "Fn::Equals":
                return walk(arg[0]) == walk(arg[1])
            if key == "Fn::Join":
                return arg[0].join(str(walk(part)) for part in arg[1])
        walked = {k: walk(v) for k, v in node.items()}
        return {k: v for k, v in walked.items() if v is not _NO_VALUE}

    def sub_one(name: str) -> str:
        if "." in name and name not in PSEUDO:
            return known.get(name, f"<{name}>")
        return str(ref(name))

    return walk(value)


def is_symbolic(value: Any) -> bool:
    """Whether `resolve` left this value as a reference to an AWS resource."""
    return isinstance(value, str) and "<" in value and ">" in value
