"""The provider edge: sans-IO telephony adapters, call control, CRM look-ups, caller numbers."""

from loopline.providers.crm import ChainedCrm, CrmClient, CrmError, FileCrm, HttpCrm
from loopline.providers.phone import is_withheld, normalize_caller
from loopline.providers.twilio import (
    CallStatusUpdate,
    DialStatusUpdate,
    SignatureChecker,
    TwilioAdapter,
    WebhookError,
    render_connect,
    render_enqueue,
    render_fallback,
    render_hangup,
    render_leave,
    render_redial,
    render_say_hangup,
    render_wait,
)
from loopline.providers.twilio_rest import CallControl, CallControlError, TwilioCallControl

__all__ = [
    "CallControl",
    "CallControlError",
    "CallStatusUpdate",
    "ChainedCrm",
    "CrmClient",
    "CrmError",
    "DialStatusUpdate",
    "FileCrm",
    "HttpCrm",
    "SignatureChecker",
    "TwilioAdapter",
    "TwilioCallControl",
    "WebhookError",
    "is_withheld",
    "normalize_caller",
    "render_connect",
    "render_enqueue",
    "render_fallback",
    "render_hangup",
    "render_leave",
    "render_redial",
    "render_say_hangup",
    "render_wait",
]
