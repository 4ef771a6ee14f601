"""Commit message templates: Go text/template syntax over Flux's template data, safe fallback."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.automation.gotemplate import MAX_OUTPUT_CHARS, TemplateError, render
from gitops_tasks.automation.setters import Change
from gitops_tasks.automation.template import DEFAULT_MESSAGE, render_message, template_data

CHANGES = [
    Change("apps/web.yaml", 9, "ghcr.io/org/web:1.0.0", "ghcr.io/org/web:1.1.0", "apps:web", "apps:web",
           "Deployment", "web", "apps", "apps/v1"),
    Change("apps/web.yaml", 20, "1.0.0", "1.1.0", "apps:web:tag", "apps:web", "HelmRelease", "chart", "apps",
           "helm.toolkit.fluxcd.io/v2"),
    Change("apps/db.yaml", 3, "postgres:15", "postgres:16", "apps:db", "apps:db", "StatefulSet", "db", "apps",
           "apps/v1"),
]  # fmt: skip
IMAGES = {"apps:web": ("ghcr.io/org/web", "1.1.0"), "apps:db": ("postgres", "16")}


def message(template: str, **values: str) -> str:
    data = template_data("flux-system", "auto", CHANGES, images=IMAGES, values=values)
    text, error = render_message(template, data)
    assert error is None, error
    return text


def test_no_template_gives_flux_default_message() -> None:
    assert message("") == DEFAULT_MESSAGE == "Update from image update automation"


def test_flux_documented_template() -> None:
    # Objects range in Go's order for struct keys: APIVersion, Kind, Name, Namespace.
    template = """Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
    {{ if contains "1.1.0" $change.NewValue -}}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
    {{ else -}}
    [skip ci] other image
    {{ end -}}
{{ end -}}
{{ end -}}
"""
    assert message(template) == (
        "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n"
        "- apps/db.yaml\n- apps/web.yaml\nObjects:\n"
        "- deployment web\n  Changes:\n    - ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.1.0\n    "
        "- statefulset db\n  Changes:\n    [skip ci] other image\n    "
        "- helmrelease chart\n  Changes:\n    - 1.0.0 -> 1.1.0\n    "
    )


def test_changes_with_print_and_println() -> None:
    template = "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}"
    assert message(template) == (
        "ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.1.0\n1.0.0 -> 1.1.0\npostgres:15 -> postgres:16\n"
    )


def test_image_result_of_v1beta2_and_updated_of_v1beta1() -> None:
    template = (
        "{{ range .Changed.ImageResult.Images }}"
        "{{ . }} ({{ .Name }}, {{ .Repository }}, {{ .Policy }})\n{{ end }}"
        "{{ range $file, $r := .Updated.Files }}{{ $file }}: {{ len $r.Objects }}\n{{ end }}"
    )
    assert message(template) == (
        "ghcr.io/org/web:1.1.0 (ghcr.io/org/web:1.1.0, org/web, apps/web)\n"
        "postgres:16 (index.docker.io/library/postgres:16, library/postgres, apps/db)\n"
        "apps/db.yaml: 1\napps/web.yaml: 2\n"
    )


def test_values_and_automation_fields() -> None:
    template = (
        "Update {{ .Values.cluster }} by {{ .AutomationObject.Name }} in {{ .AutomationObject.Namespace }}"
    )
    assert message(template, cluster="prod") == "Update prod by auto in flux-system"


@pytest.mark.parametrize(
    "template",
    [
        "{{ .Changed.Nope }}",
        "{{ range .Changed.Changes }}",
        "{{ unknownFunc 1 }}",
        '{{ template "x" }}',
        "{{ .AutomationObject",
        '{{ repeat 100000 "0123456789" }}',
    ],
)
def test_broken_templates_fall_back_to_the_default_message(template: str) -> None:
    data = template_data("ns", "auto", CHANGES)
    text, error = render_message(template, data)
    assert text == DEFAULT_MESSAGE
    assert error is not None and error.startswith("spec.git.commit.messageTemplate: ")


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ("a {{- ` b ` -}} c", {}, "a b c"),
        ("{{/* comment */}}x{{- /* trimmed */ -}}\n y", {}, "xy"),
        ("{{ if .A }}yes{{ else if .B }}b{{ else }}no{{ end }}", {"A": 0, "B": "x"}, "b"),
        ("{{ with .A }}{{ . }}{{ else }}none{{ end }}", {"A": ""}, "none"),
        ("{{ range $i, $v := .L }}{{ $i }}={{ $v }} {{ end }}", {"L": ["a", "b"]}, "0=a 1=b "),
        ("{{ range .M }}{{ . }}{{ end }}", {"M": {"b": 2, "a": 1}}, "12"),
        ("{{ range .L }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}", {"L": [1, 2, 3]}, "1"),
        ("{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", {"L": [1, 2, 3]}, "13"),
        ("{{ range .L }}x{{ else }}empty{{ end }}", {"L": []}, "empty"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", {}, "2"),
        ('{{ printf "%s-%d-%q-%5s|" .S 7 .S "ab" }}', {"S": "x"}, 'x-7-"x"-   ab|'),
        ('{{ print 1 2 "a" 3 }}', {}, "1 2a3"),
        ('{{ .S | upper | printf "<%s>" }}', {"S": "x"}, "<X>"),
        ('{{ (index .L 1) }} {{ index .M "k" }} {{ len .L }}', {"L": [5, 6], "M": {"k": "v"}}, "6 v 2"),
        ('{{ and 1 0 }} {{ or 0 "" 3 }} {{ not .A }}', {"A": []}, "0 3 true"),
        ('{{ trimPrefix "v" .T }} {{ replace "." "-" .T }} {{ trunc 2 .T }}', {"T": "v1.2"}, "1.2 v1-2 v1"),
        (
            '{{ join ", " .L }} {{ default "d" .Missing }} {{ .Missing }}',
            {"L": ["a", "b"]},
            "a, b d <no value>",
        ),
        (
            "{{ .L }} {{ .M }} {{ .N }} {{ true }}",
            {"L": [1, "a"], "M": {"k": 1}, "N": None},
            "[1 a] map[k:1] <nil> true",
        ),
        ('{{ "\\u00e9\\t\\"q\\"" }}', {}, 'é\t"q"'),
    ],
)
def test_go_template_semantics(template: str, data: Any, expected: str) -> None:
    assert render(template, data) == expected


def test_output_is_capped() -> None:
    with pytest.raises(TemplateError, match="longer than"):
        render(
            "{{ range .L }}{{ $.S }}{{ end }}", {"L": list(range(100)), "S": "x" * (MAX_OUTPUT_CHARS // 50)}
        )


def test_python_internals_are_not_reachable() -> None:
    data = template_data("ns", "auto", CHANGES)
    for template in ("{{ .__class__ }}", "{{ .Changed.__dict__ }}", "{{ .AutomationObject.go_string }}"):
        with pytest.raises(TemplateError, match="can't evaluate field"):
            render(template, data)
