"""`mastodon-py`: a channel connector for Mastodon, written in Python.

Built into a component of contract 0.1 (`wit/since_v0.1.0`, world `channel`) by
componentize-py; `cargo xtask plugins` does it (see "Writing a connector in Python" in
docs/writing-a-channel-plugin.md).

- **poll**: `GET {api_base}/api/v1/notifications?types[]=mention&limit=40[&min_id=<id>]`
  with the account's credential (the host attaches the bearer token; this code never sees
  it). Each mention becomes one message: the status' HTML reduced to text, the author's
  `acct` as handle, `status.language` as the `lang` extra, `in_reply_to_id` as
  `in-reply-to`. A `direct` status is a private message, any other a public post. The
  cursor is the newest notification id seen. `min_id` rather than `since_id`: Mastodon
  answers `since_id` with the newest page, so more than 40 mentions between two polls would
  lose the older ones; `min_id` gives the page right after the cursor, and the next poll
  continues from it. The first poll (no cursor) starts from now:
  it only learns the newest id, unless the setting `backfill = "true"` stores that page.
- **send**: `POST {api_base}/api/v1/statuses` with `status` (prefixed with `@acct`, which
  Mastodon needs to notify the customer), `in_reply_to_id` and the `visibility` of the
  customer's status (a `direct` mention gets a `direct` reply, never a public one), and an
  `Idempotency-Key` header from the reply's idempotency key.

A conversation is one customer (`acct`) writing to one account with one visibility:
`mastodon:<account>:<visibility>:<acct>`. The key carries what a reply needs (whom to
mention, how visible), so a reply works after a restart without any state.

Settings: `api_base` (required, such as `https://mastodon.social`), `backfill`
(`true`/`false`, default `false`).
"""

import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import connector as c
from wit_world.imports import clock, http, log, types

CHANNEL = "mastodon"
# Mastodon's default status length; the `@acct ` prefix counts towards it.
MAX_TEXT = 500
# Notifications asked for per poll (Mastodon's maximum for this endpoint).
PAGE = 40
VISIBILITIES = ("public", "unlisted", "private", "direct")
KNOWN_SETTINGS = ("api_base", "backfill")

# One instance serves one tenant's accounts; the configuration lives here between calls.
_state = {"api_base": None, "backfill": False, "accounts": {}}


# ---- errors ----


def _invalid_input(reason: str) -> Err:
    return Err(types.PluginError_InvalidInput(reason))


def _rejected(reason: str) -> Err:
    return Err(types.PluginError_Rejected(reason))


def _transient(reason: str) -> Err:
    return Err(types.PluginError_Transient(reason))


def _rate_limited(retry_after_ms: int, detail: str) -> Err:
    return Err(types.PluginError_RateLimited(types.RateLimit(retry_after_ms, detail)))


# ---- HTML to text ----


class _Text(HTMLParser):
    """Mastodon's status HTML (`<p>`, `<br>`, links, mention `<span>`s) as plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: List[str] = []
        self.current: List[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.current.append("\n")
        elif tag == "p":
            self._end_paragraph()
        # Mastodon hides the long middle of links in an `invisible` span only for
        # display; the text keeps them whole, so nothing is dropped here.

    def handle_endtag(self, tag):
        if tag == "p":
            self._end_paragraph()

    def handle_data(self, data):
        self.current.append(data)

    def _end_paragraph(self):
        text = "".join(self.current).strip()
        if text:
            self.paragraphs.append(text)
        self.current = []

    def text(self) -> str:
        self._end_paragraph()
        return "\n\n".join(self.paragraphs)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text()


# ---- times ----

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rfc3339_ms(value: str) -> Optional[int]:
    """Milliseconds since the epoch of an RFC 3339 time (`2026-12-03T16:30:00.000Z`)."""
    try:
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        at = datetime.fromisoformat(text)
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        # Whole milliseconds, without the rounding of a float timestamp.
        delta = at - _EPOCH
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    except (ValueError, AttributeError, OverflowError):
        return None


# ---- configuration ----


class Connector(exports.Connector):
    def describe(self) -> c.Description:
        return c.Description(
            channel=CHANNEL,
            summary="Mastodon mentions by polling; replies as statuses with the customer's visibility (Python).",
            capabilities=[
                c.Capability.POLLING,
                c.Capability.PUBLIC_REPLY,
                c.Capability.PRIVATE_MESSAGE,
            ],
            max_text_length=MAX_TEXT,
        )

    def configure(self, config: c.Config) -> None:
        settings = {}
        for name, value in config.settings:
            if name not in KNOWN_SETTINGS:
                raise _invalid_input(
                    f"mastodon connector: unknown setting `{name}` (known: {', '.join(KNOWN_SETTINGS)})"
                )
            settings[name] = value
        api_base = settings.get("api_base", "").strip().rstrip("/")
        if not api_base:
            raise _invalid_input(
                "mastodon connector: the setting `api_base` is required (the instance, such as `https://mastodon.social`)"
            )
        if not (api_base.startswith("https://") or api_base.startswith("http://")):
            raise _invalid_input(
                f"mastodon connector: the setting `api_base` must be an http(s) URL, not `{api_base}`"
            )
        backfill = settings.get("backfill", "false").strip().lower()
        if backfill not in ("true", "false"):
            raise _invalid_input(
                f"mastodon connector: the setting `backfill` must be `true` or `false`, not `{backfill}`"
            )
        accounts = {}
        for account in config.accounts:
            if not account.id:
                raise _invalid_input("mastodon account: an account needs an id")
            if ":" in account.id:
                raise _invalid_input(
                    f"mastodon account `{account.id}`: an account id cannot contain `:`"
                )
            if account.settings:
                raise _invalid_input(
                    f"mastodon account `{account.id}`: unknown setting `{account.settings[0][0]}` (accounts take none)"
                )
            accounts[account.id] = account
        _state["api_base"] = api_base
        _state["backfill"] = backfill == "true"
        _state["accounts"] = accounts

    # ---- polling ----

    def poll(self, account: str, cursor: Optional[str]) -> c.PollResult:
        credential = _credential(account)
        if cursor is not None and not cursor.isdigit():
            raise _invalid_input(
                f"mastodon account `{account}`: the cursor `{cursor}` is not a notification id"
            )
        query = f"types[]=mention&limit={PAGE}"
        if cursor is not None:
            query += f"&min_id={cursor}"
        response = _fetch(
            http.Method.GET,
            f"{_state['api_base']}/api/v1/notifications?{query}",
            [("accept", "application/json")],
            None,
            credential,
        )
        notifications = _json(response, "the notifications")
        if not isinstance(notifications, list):
            raise _transient("mastodon answered the notifications with something other than a list")

        # Oldest first; ids are numbers written as strings, compared as numbers.
        entries = [n for n in notifications if isinstance(n, dict) and _is_id(n.get("id"))]
        entries.sort(key=lambda n: int(n["id"]))
        newest = entries[-1]["id"] if entries else None
        if cursor is None and not _state["backfill"]:
            log.write(
                log.Level.DEBUG,
                f"account {account}: first poll, starting after notification {newest or '0'} (backfill is off)",
            )
            # `0`: nothing yet, so everything after now is new.
            return c.PollResult(messages=[], cursor=newest or "0", next_poll_after_ms=None)

        messages = []
        for notification in entries:
            message = _message_for(account, notification)
            if message is not None:
                messages.append(message)
        return c.PollResult(messages=messages, cursor=newest, next_poll_after_ms=None)

    def handle_webhook(self, request: c.WebhookRequest) -> c.WebhookOutcome:
        # Mastodon's web push needs a subscription per account; this connector polls.
        return c.WebhookOutcome(
            response=c.WebhookResponse(404, [], b"mastodon-py polls; it takes no webhooks"),
            messages=[],
            receipts=[],
        )

    # ---- replies ----

    def send(self, message: types.OutboundMessage) -> c.Sent:
        credential = _credential(message.account)
        visibility, acct = _thread_of(message.conversation_key, message.account)
        if message.attachments:
            raise _rejected("mastodon-py sends text only: attachments are not supported yet")
        text = message.text.strip()
        mention = f"@{acct}"
        if not (text == mention or text.startswith(mention + " ") or text.startswith(mention + "\n")):
            text = f"{mention} {text}"
        if len(text) > MAX_TEXT:
            raise _rejected(
                f"the reply is {len(text)} characters with the mention of {mention}; Mastodon takes {MAX_TEXT}"
            )
        body = {"status": text, "visibility": visibility}
        if message.in_reply_to:
            body["in_reply_to_id"] = message.in_reply_to
        response = _fetch(
            http.Method.POST,
            f"{_state['api_base']}/api/v1/statuses",
            [
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("idempotency-key", message.idempotency_key),
            ],
            json.dumps(body).encode("utf-8"),
            credential,
        )
        status = _json(response, "the new status")
        if not isinstance(status, dict) or not _is_id(status.get("id")):
            raise _transient("mastodon accepted the status but its answer has no status id")
        sent_at = rfc3339_ms(str(status.get("created_at", ""))) or clock.now_ms()
        return c.Sent(external_id=status["id"], sent_at=sent_at)


# ---- helpers ----


def _is_id(value) -> bool:
    return isinstance(value, str) and value.isdigit()


def _credential(account: str) -> str:
    if _state["api_base"] is None:
        raise _invalid_input("mastodon connector: not configured")
    configured = _state["accounts"].get(account)
    if configured is None:
        raise _invalid_input(f"mastodon account `{account}` is not configured")
    if not configured.credential:
        raise _invalid_input(f"mastodon account `{account}` has no credential")
    return configured.credential


def _thread_key(account: str, visibility: str, acct: str) -> str:
    return f"mastodon:{account}:{visibility}:{acct}"


def _thread_of(key: str, account: str) -> Tuple[str, str]:
    """Visibility and customer `acct` of a `mastodon:<account>:<visibility>:<acct>` key."""
    prefix = f"mastodon:{account}:"
    if key.startswith(prefix):
        visibility, _, acct = key[len(prefix):].partition(":")
        if visibility in VISIBILITIES and acct and ":" not in acct and " " not in acct:
            return visibility, acct
    raise _invalid_input(
        f"`{key}` is not a mastodon conversation of account `{account}` (mastodon:{account}:<visibility>:<acct>)"
    )


def _message_for(account: str, notification: dict) -> Optional[types.Message]:
    """The message a mention means, or None (logged) for anything else."""
    kind = notification.get("type")
    event = notification.get("id")
    if kind != "mention":
        log.write(
            log.Level.DEBUG,
            f"centralino:ignored reason=unsupported-notification event={event}: a `{kind}` notification, not a mention",
        )
        return None
    status = notification.get("status")
    author = (status or {}).get("account") if isinstance(status, dict) else None
    if not isinstance(status, dict) or not isinstance(author, dict) or not _is_id(status.get("id")):
        log.write(
            log.Level.WARN,
            f"centralino:ignored reason=malformed-mention event={event}: the mention carries no status with an id and an account",
        )
        return None
    acct = str(author.get("acct") or "")
    visibility = status.get("visibility")
    if not acct or visibility not in VISIBILITIES:
        log.write(
            log.Level.WARN,
            f"centralino:ignored reason=malformed-mention event={event}: no author acct or an unknown visibility `{visibility}`",
        )
        return None
    text = html_to_text(str(status.get("content") or ""))
    spoiler = str(status.get("spoiler_text") or "").strip()
    if spoiler:
        text = f"{spoiler}\n\n{text}" if text else spoiler
    extra = [("visibility", visibility)]
    language = status.get("language")
    if isinstance(language, str) and language:
        extra.insert(0, ("lang", language))
    if isinstance(status.get("url"), str):
        extra.append(("url", status["url"]))
    attachments = []
    for media in status.get("media_attachments") or []:
        if isinstance(media, dict):
            attachments.append(
                types.Attachment(
                    kind=str(media.get("type") or "file"),
                    url=media.get("url") if isinstance(media.get("url"), str) else None,
                    mime_type=None,
                    description=media.get("description") if isinstance(media.get("description"), str) else None,
                )
            )
    in_reply_to = status.get("in_reply_to_id")
    created_at = rfc3339_ms(str(status.get("created_at") or "")) or clock.now_ms()
    display_name = author.get("display_name")
    return types.Message(
        external_id=status["id"],
        account=account,
        conversation_key=_thread_key(account, visibility, acct),
        author=types.Person(
            id=str(author.get("id") or acct),
            handle=acct,
            display_name=display_name if isinstance(display_name, str) and display_name else None,
        ),
        text=text,
        kind=types.MessageKind.PRIVATE_MESSAGE if visibility == "direct" else types.MessageKind.PUBLIC_POST,
        in_reply_to=in_reply_to if _is_id(in_reply_to) else None,
        attachments=attachments,
        created_at=created_at,
        extra=extra,
    )


def _fetch(method, url: str, headers, body: Optional[bytes], credential: str) -> http.Response:
    """One exchange through the host; a failed one becomes the contract's error."""
    try:
        response = http.fetch(http.Request(method, url, headers, body, credential, None))
    except Err as e:
        raise _transport_error(e.value)
    if 200 <= response.status < 300:
        return response
    raise _status_error(response)


def _transport_error(error) -> Err:
    if isinstance(error, (http.HttpError_Denied, http.HttpError_InvalidRequest)):
        return _invalid_input(f"the host refused the request: {error.value}")
    if isinstance(error, http.HttpError_Timeout):
        return _transient("mastodon did not answer in time")
    if isinstance(error, http.HttpError_Connection):
        return _transient(f"could not reach mastodon: {error.value}")
    if isinstance(error, http.HttpError_TooLarge):
        return _transient(f"mastodon's answer is larger than the host's limit of {error.value} bytes")
    if isinstance(error, http.HttpError_RateLimited):
        return _rate_limited(
            error.value, "the host is holding requests until mastodon's rate-limit window resets"
        )
    return _transient(f"the request failed: {error}")


def _header(response: http.Response, name: str) -> Optional[str]:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


def _status_error(response: http.Response) -> Err:
    detail = _error_detail(response)
    status = response.status
    if status == 401:
        return Err(types.PluginError_InvalidCredentials(f"mastodon refused the token: {detail}"))
    if status == 429:
        # Mastodon writes the reset as an RFC 3339 time (`X-RateLimit-Reset`).
        wait_ms = 60_000
        reset = _header(response, "x-ratelimit-reset")
        at = rfc3339_ms(reset) if reset else None
        if at is not None:
            wait_ms = max(1000, at - clock.now_ms())
        return _rate_limited(wait_ms, f"mastodon answered 429 until {reset or 'unknown'}: {detail}")
    if 500 <= status <= 599:
        return _transient(f"mastodon answered {status}: {detail}")
    return _rejected(f"mastodon answered {status}: {detail}")


def _error_detail(response: http.Response) -> str:
    try:
        parsed = json.loads(response.body.decode("utf-8"))
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return parsed["error"]
    except (ValueError, UnicodeDecodeError):
        pass
    return response.body[:200].decode("utf-8", errors="replace") or "(no body)"


def _json(response: http.Response, what: str):
    try:
        return json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise _transient(f"mastodon answered {what} with something that is not JSON: {e}")
