"""``googlechat``: a Google Chat space's incoming webhook (``address``, a secret) gets one card:
``kind/name.namespace`` over the reporting controller, the message (red on error) and the
metadata as key-value widgets."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    object_id,
    post_json,
    required,
    sorted_metadata,
)


def card(event: Event) -> dict[str, object]:
    text = event.message
    if event.severity == "error":
        text = f'<font color="#ff0000">{event.message}</font>'
    sections: list[dict[str, object]] = [{"widgets": [{"textParagraph": {"text": text}}]}]
    fields = sorted_metadata(event)
    if fields:
        widgets = [{"keyValue": {"topLabel": k, "content": v, "contentMultiline": False}} for k, v in fields]
        sections.append({"widgets": widgets})
    header = {"title": object_id(event), "subtitle": event.controller}
    return {"header": header, "sections": sections}


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    return [post_json(url, {"cards": [card(event)]})]
