"""Post-build substitution: Flux's envsubst expressions, variable sources and per-object opt-out."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gitops_tasks.sync.envsubst import EnvsubstError, expand
from gitops_tasks.sync.errors import SubstituteError
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.substitute import post_build, substitute, variables

VARS = {
    "var01": "abcdEFGH28ij",
    "path_name": "/home/bozo/ideas/thoughts.for.today",
    "stringZ": "abcABC123ABCabc",
    "filename": "bash.string.txt",
    "slashes": "foo/bar/baz",
    "default_var": "foo",
    "empty": "",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("${var01}", "abcdEFGH28ij"),
        ("$var01 stays", "$var01 stays"),
        ("cost: $5", "cost: $5"),
        ("$${var01}", "${var01}"),
        (
            "some text ${var01}$${var$${var01}$var01${var01}",
            "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
        ),
        ("something $${var=${default_var}}", "something ${var=foo}"),
        ("${unset}", ""),
        ("${unset:=dev}", "dev"),
        ("${empty:=dev}", "dev"),
        ("${empty=dev}", ""),
        ("${unset=dev}", "dev"),
        ("${unset:-dev}", "dev"),
        ("${var01:=dev}", "abcdEFGH28ij"),
        ("something ${var=${default_var}}", "something foo"),
        ("${var=prefix${default_var}-suffix}", "prefixfoo-suffix"),
        ("${#var01}", "12"),
        ("${var01^}", "AbcdEFGH28ij"),
        ("${var01^^}", "ABCDEFGH28IJ"),
        ("${var01,}", "abcdEFGH28ij"),
        ("${var01,,}", "abcdefgh28ij"),
        ("${path_name:11}", "ideas/thoughts.for.today"),
        ("${path_name:11:5}", "ideas"),
        ("${filename#*.}", "string.txt"),
        ("${filename##*.}", "txt"),
        ("${filename%.*}", "bash.string"),
        ("${filename%%.*}", "bash"),
        ("${stringZ/abc/xyz}", "xyzABC123ABCabc"),
        ("${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
        ("${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
        ("${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
        ("${stringZ/#/prefix-}", "prefix-abcABC123ABCabc"),
        ("${stringZ/%/-suffix}", "abcABC123ABCabc-suffix"),
        (r"${slashes/\//-}", "foo-bar/baz"),
        (r"${slashes//\//-}", "foo-bar-baz"),
        ("${var=${var01^^}}", "ABCDEFGH28IJ"),
    ],
)
def test_expressions_expand_as_flux_envsubst(text: str, expected: str) -> None:
    assert expand(text, VARS) == expected


@pytest.mark.parametrize(
    "text", ["${missing}", "${#missing}", "${missing^^}", "${missing/a/b}", "${missing:0:2}"]
)
def test_strict_mode_refuses_unset_variables(text: str) -> None:
    with pytest.raises(EnvsubstError, match="variable 'missing' is not set"):
        expand(text, VARS, strict=True)


@pytest.mark.parametrize("text", ["${missing:=x}", "${missing=x}", "${missing:-x}", "${empty}"])
def test_strict_mode_accepts_defaults_and_empty_values(text: str) -> None:
    expand(text, VARS, strict=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${var01", "unterminated"),
        ("${1abc}", "invalid variable name"),
        ("${var01+x}", "unsupported expression"),
    ],
)
def test_malformed_expressions_are_errors(text: str, message: str) -> None:
    with pytest.raises(EnvsubstError, match=message):
        expand(text, VARS)


def manifest(
    name: str,
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    **data: str,
) -> Manifest:
    meta: dict = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)},
        f"{name}.yaml: document 1 (line 1)",
    )


def test_substitution_runs_over_each_object_and_skips_disabled_ones() -> None:
    key = "kustomize.toolkit.fluxcd.io/substitute"
    objects = [
        manifest("a-${env}", region="${region:=eu}", script="echo $HOME ${env}"),
        manifest("b", annotations={key: "disabled"}, v="${env}"),
        manifest("c", labels={key: "disabled"}, v="${env}"),
        manifest("d", plain="no variables"),
    ]
    out = substitute(objects, {"env": "prod"})
    assert out[0].obj["metadata"]["name"] == "a-prod"
    assert out[0].obj["data"] == {"region": "eu", "script": "echo $HOME prod"}
    assert [m.obj["data"] for m in out[1:3]] == [{"v": "${env}"}, {"v": "${env}"}]
    assert out[3] is objects[3]
    assert objects[0].obj["metadata"]["name"] == "a-${env}"  # the input is untouched


def test_substituted_numbers_become_numbers_as_in_flux() -> None:
    out = substitute([manifest("a", n="${n}", quoted="${quote}${n}${quote}")], {"n": "3", "quote": '"'})
    assert out[0].obj["data"] == {"n": 3, "quoted": "3"}


def test_substitution_errors_name_the_object_and_its_file() -> None:
    with pytest.raises(
        SubstituteError, match=r"a.yaml: document 1 \(line 1\): ConfigMap/a: .*'missing' is not set"
    ):
        substitute([manifest("a", v="${missing}")], {}, strict=True)
    with pytest.raises(
        SubstituteError,
        match=r"after variable substitution, .*ConfigMap/\$\{gone\}: ConfigMap is missing metadata\.name",
    ):
        substitute([manifest("${gone}")], {})


def reader(store: dict[tuple[str, str], dict[str, str]]):
    return lambda kind, name: store.get((kind, name))


DEFAULTED = [manifest("a", region="${region:=eu}", env="${env}")]


@pytest.mark.parametrize(
    ("post", "store", "data"),
    [
        # no postBuild, or WithVariables (the default) with no variable resolved: untouched
        (None, {}, {"region": "${region:=eu}", "env": "${env}"}),
        ({}, {}, {"region": "${region:=eu}", "env": "${env}"}),
        ({"substitute": {}}, {}, {"region": "${region:=eu}", "env": "${env}"}),
        (
            {"substituteFrom": [{"kind": "ConfigMap", "name": "absent", "optional": True}]},
            {},
            {"region": "${region:=eu}", "env": "${env}"},
        ),
        (
            {"substituteFrom": [{"kind": "ConfigMap", "name": "empty"}]},
            {("ConfigMap", "empty"): {}},
            {"region": "${region:=eu}", "env": "${env}"},
        ),
        (
            {"substituteStrategy": "WithVariables"},
            {},
            {"region": "${region:=eu}", "env": "${env}"},
        ),
        # one variable, from either source: substituted
        ({"substitute": {"env": "prod"}}, {}, {"region": "eu", "env": "prod"}),
        (
            {"substituteFrom": [{"kind": "Secret", "name": "s"}]},
            {("Secret", "s"): {"env": "prod"}},
            {"region": "eu", "env": "prod"},
        ),
        # Always: substituted even with no variables (defaults apply; unset is empty, so null)
        ({"substituteStrategy": "Always"}, {}, {"region": "eu", "env": None}),
    ],
)
def test_substitution_runs_when_flux_substitute_strategy_says(
    post: dict | None, store: dict, data: dict[str, str]
) -> None:
    spec = {} if post is None else {"postBuild": post}
    out = post_build(DEFAULTED, spec, read=reader(store), namespace="apps")
    assert out[0].obj["data"] == data


def test_always_with_strict_substitution_refuses_an_unset_variable() -> None:
    spec = {"postBuild": {"substituteStrategy": "Always"}}
    with pytest.raises(SubstituteError, match="'env' is not set"):
        post_build(DEFAULTED, spec, read=reader({}), namespace="apps", strict=True)


def test_an_unknown_substitute_strategy_names_the_field_and_the_values() -> None:
    spec = {"postBuild": {"substituteStrategy": "Never"}}
    with pytest.raises(
        SubstituteError,
        match=r"spec\.postBuild\.substituteStrategy: expected one of WithVariables, Always, got 'Never'",
    ):
        post_build(DEFAULTED, spec, read=reader({}), namespace="apps")


def test_values_lose_their_newlines_from_every_source_as_in_flux() -> None:
    spec = {
        "postBuild": {
            "substitute": {"inline": "line one\nline two\n", "cr": "a\r\nb"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "cm"}, {"kind": "Secret", "name": "s"}],
        }
    }
    store = {("ConfigMap", "cm"): {"from_cm": "eu-west-1\n"}, ("Secret", "s"): {"token": "\nabc\n\n"}}
    assert variables(spec, read=reader(store), namespace="apps") == {
        "inline": "line oneline two",
        "cr": "a\rb",
        "from_cm": "eu-west-1",
        "token": "abc",
    }


def test_a_multi_line_value_no_longer_breaks_the_yaml() -> None:
    spec = {"postBuild": {"substitute": {"cert": "-----BEGIN-----\nMIIB\n-----END-----\n"}}}
    out = post_build([manifest("a", cert="${cert}", after="kept")], spec, read=reader({}), namespace="apps")
    assert out[0].obj["data"] == {"cert": "-----BEGIN-----MIIB-----END-----", "after": "kept"}


def test_inline_values_win_and_later_sources_override_earlier_ones() -> None:
    spec = {
        "postBuild": {
            "substitute": {"inline": "spec", "shared": "spec"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "first"},
                {"kind": "Secret", "name": "second"},
                {"kind": "ConfigMap", "name": "absent", "optional": True},
            ],
        }
    }
    store = {
        ("ConfigMap", "first"): {"shared": "cm", "order": "cm", "only_cm": "1"},
        ("Secret", "second"): {"shared": "secret", "order": "secret"},
    }
    assert variables(spec, read=reader(store), namespace="apps") == {
        "shared": "spec",
        "order": "secret",
        "only_cm": "1",
        "inline": "spec",
    }


def test_a_required_source_that_is_missing_is_a_transient_error() -> None:
    spec = {"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "vars"}]}}
    with pytest.raises(SubstituteError, match="Secret apps/vars not found") as err:
        variables(spec, read=reader({}), namespace="apps")
    assert err.value.result == "transient"


def test_invalid_variable_names_are_refused_naming_their_source() -> None:
    spec = {"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "cm"}]}}
    with pytest.raises(
        SubstituteError, match=r"ConfigMap apps/cm: variable name 'app.version' is invalid"
    ) as err:
        variables(spec, read=reader({("ConfigMap", "cm"): {"app.version": "1"}}), namespace="apps")
    assert err.value.result == "stalled"
