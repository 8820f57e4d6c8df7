"""Twilio's webhooks: every one signature-checked, every answer TwiML, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.providers import twilio as tw
from loopline.router.answers import Answer, Connect, Enqueue, Fallback
from loopline.web.node import Node

log = logging.getLogger(__name__)
TWIML = "application/xml"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _xml(body: str, status: int = 200) -> Response:
    return Response(content=body, media_type=TWIML, status_code=status)


async def _signed_form(request: Request) -> dict[str, str] | None:
    """The form Twilio posted, or None when the signature does not check out."""
    node = _node(request)
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    if node.signatures is None:
        return None
    url = node.settings.public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature", "")
    if not node.signatures.check(url, params, signature):
        return None
    return params


def _forbidden() -> Response:
    return _xml("<Response><Reject/></Response>", status=403)


def _disclosure(answer: Connect | Enqueue) -> tw.Disclosure | None:
    consent = answer.consent
    if consent is None or not consent.disclose:
        return None
    return tw.Disclosure(say=consent.disclosure, play_url=consent.disclosure_audio_url)


def render(node: Node, answer: Answer) -> str:
    base = node.settings.public_url
    stream = _ws_url(base) + "/twilio/media"
    if isinstance(answer, Connect):
        action = f"{base}/twilio/dial-status?call_id={answer.call_id}"
        if answer.start_stream:
            return tw.render_connect(
                stream_url=stream,
                call_id=answer.call_id,
                endpoint=answer.endpoint,
                action_url=action,
                timeout_s=answer.timeout_s,
                caller_id=node.settings.deployment.routing.caller_id,
                disclosure=_disclosure(answer),
            )
        if answer.consent is not None:
            return tw.render_redial_disclosed(
                endpoint=answer.endpoint,
                action_url=action,
                timeout_s=answer.timeout_s,
                caller_id=node.settings.deployment.routing.caller_id,
                disclosure=_disclosure(answer),
            )
        return tw.render_redial(
            endpoint=answer.endpoint,
            action_url=action,
            timeout_s=answer.timeout_s,
            caller_id=node.settings.deployment.routing.caller_id,
        )
    if isinstance(answer, Enqueue):
        return tw.render_enqueue(
            queue=answer.queue,
            wait_url=f"{base}/twilio/wait?queue={quote(answer.queue)}",
            action_url=f"{base}/twilio/queue-exit?call_id={answer.call_id}",
            stream_url=stream if answer.start_stream else None,
            call_id=answer.call_id if answer.start_stream else None,
            disclosure=_disclosure(answer),
        )
    if isinstance(answer, Fallback):
        if answer.number is None:
            return tw.render_say_hangup(answer.message)
        return tw.render_fallback(answer.number, answer.message)
    return tw.render_hangup()


def greeting(node: Node, request: Request) -> str | None:
    """The ADMT opt-out greeting, on a call's first voice webhook when a key is configured;
    its <Gather> (or the silence after it) posts the webhook again with `admt=1`."""
    admt = node.settings.deployment.compliance.admt
    if admt.dtmf_key is None or request.query_params.get("admt") is not None:
        return None
    again = f"{node.settings.public_url}/twilio/voice?admt=1"
    return tw.render_greeting(
        message=admt.greeting.replace("{key}", admt.dtmf_key),
        action_url=again,
        timeout_s=admt.gather_timeout_s,
        continue_url=again,
    )


def _ws_url(base: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    return "ws://" + base.removeprefix("http://")


def build_twilio_router() -> APIRouter:
    api = APIRouter(prefix="/twilio", tags=["twilio"])

    @api.post("/voice")
    async def voice(request: Request) -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        try:
            inbound = node.twilio.parse_voice(form, node.clock.now())
        except tw.WebhookError as exc:
            return _xml(f"<Response><!-- {exc} --></Response>", status=400)
        greet = greeting(node, request)
        if greet is not None:
            return _xml(greet)
        return _xml(render(node, await _safe(node, node.router.on_incoming(inbound))))

    @api.post("/connect")
    async def connect(request: Request, call_id: str) -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        return _xml(render(node, await _safe(node, node.router.on_connect(call_id))))

    @api.post("/dial-status")
    async def dial_status(request: Request, call_id: str) -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        try:
            update = node.twilio.parse_dial_status(form)
        except tw.WebhookError as exc:
            return _xml(f"<Response><!-- {exc} --></Response>", status=400)
        answer = await _safe(node, node.router.on_dial_status(call_id, update.dial_status))
        return _xml(render(node, answer))

    @api.post("/status")
    async def status(request: Request) -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        try:
            update = node.twilio.parse_status(form)
        except tw.WebhookError as exc:
            return _xml(f"<Response><!-- {exc} --></Response>", status=400)
        try:
            await node.router.on_status(update.call_sid, update.status)
        except Exception:
            log.exception("status callback failed")
        return _xml(EMPTY)

    @api.post("/queue-exit")
    async def queue_exit(request: Request, call_id: str) -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        result = form.get("QueueResult", "")
        return _xml(render(node, await _safe(node, node.router.on_queue_exit(call_id, result))))

    @api.post("/wait")
    async def wait(request: Request, queue: str = "") -> Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden()
        node = _node(request)
        conf = next((q for q in node.settings.deployment.queues if q.name == queue), None)
        routing = node.settings.deployment.routing
        message = (conf.wait_message if conf else None) or routing.wait_message
        return _xml(tw.render_wait(message, routing.hold_music_url))

    return api


async def _safe(node: Node, step: Awaitable[Answer]) -> Answer:
    """Twilio must never see a 500: any failure answers with the fallback route."""
    try:
        return await step
    except Exception:
        log.exception("twilio callback failed; answering with the fallback")
        return node.router.fallback()
