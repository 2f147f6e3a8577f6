// The webhook route: Meta's subscription handshake and signed deliveries.
//
// - `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: the token is compared
//   with the secret named by `verify_token` inside the host (constant time); a match is
//   answered with the challenge (if shaped like one), anything else with 403.
// - `POST`: `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the raw body with
//   the app secret, checked by the host over the bytes exactly as received, before
//   anything is parsed: missing is 401, wrong is 403, and neither produces a message.
//
// A verified delivery is a `whatsapp_business_account` object whose
// `entry[].changes[]` (field `messages`) carry `value.messages[]` (customer messages) and
// `value.statuses[]` (what became of the messages the business sent).

import { write } from 'centralino:plugin/log@0.1.0';
import { nowMs } from 'centralino:plugin/clock@0.1.0';
import { secretEquals, verifyHmacSha256 } from 'centralino:plugin/signing@0.1.0';
import type { Settings } from './config.js';
import {
  type Attachment,
  type DeliveryState,
  type Message,
  type Receipt,
  type WebhookOutcome,
  type WebhookRequest,
  rejected,
} from './types.js';

const encoder = new TextEncoder();

function text(status: number, body: string): WebhookOutcome {
  return {
    response: { status, headers: [['content-type', 'text/plain']], body: encoder.encode(body) },
    messages: [],
    receipts: [],
  };
}

/** A verified delivery that cannot be read: 400, and a warning in the host log. */
function malformed(reason: string): WebhookOutcome {
  write('warn', `refused a delivery: ${reason}`);
  return text(400, reason);
}

/** Logs an event left out on purpose, by the host's `centralino:ignored` convention. */
function ignored(reason: string, event: string, why: string): void {
  write('info', `centralino:ignored reason=${reason} event=${event}: ${why}`);
}

function header(request: WebhookRequest, name: string): string | undefined {
  const pair = request.headers.find(([key]) => key === name);
  return pair === undefined ? undefined : pair[1];
}

function queryParam(query: string, name: string): string | undefined {
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (decode(key) === name) {
      return eq < 0 ? '' : decode(part.slice(eq + 1));
    }
  }
  return undefined;
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '));
  } catch {
    return component;
  }
}

/** Runs a signing import, turning its refusal into the plugin error it is. */
function signing<T>(secret: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw rejected(`the secret \`${secret}\` is not granted to this connector: ${describe(e)}`);
  }
}

export function describe(e: unknown): string {
  if (e !== null && typeof e === 'object' && 'payload' in e) {
    const payload = (e as { payload: unknown }).payload;
    if (payload !== null && typeof payload === 'object' && 'tag' in payload) {
      const { tag, val } = payload as { tag: string; val?: unknown };
      return val === undefined ? tag : `${tag}: ${String(val)}`;
    }
  }
  return String(e);
}

export function handle(settings: Settings, request: WebhookRequest): WebhookOutcome {
  switch (request.method) {
    case 'GET':
      return handshake(settings, request);
    case 'POST':
      return receive(settings, request);
    default:
      return text(405, 'only GET (verification) and POST (events) are served');
  }
}

function handshake(settings: Settings, request: WebhookRequest): WebhookOutcome {
  if (queryParam(request.query, 'hub.mode') !== 'subscribe') {
    return text(403, 'hub.mode must be subscribe');
  }
  const token = queryParam(request.query, 'hub.verify_token');
  if (token === undefined) {
    return text(403, 'missing hub.verify_token');
  }
  if (!signing(settings.verifyToken, () => secretEquals(settings.verifyToken, token))) {
    return text(403, 'hub.verify_token does not match');
  }
  const challenge = queryParam(request.query, 'hub.challenge');
  if (challenge === undefined) {
    return text(400, 'missing hub.challenge');
  }
  // Echoed only when shaped like Meta's: the endpoint must not reflect arbitrary content.
  if (!/^[A-Za-z0-9+/=_.~-]{1,256}$/.test(challenge)) {
    return text(
      400,
      'hub.challenge is not a challenge token (at most 256 letters, digits and `+/=_.~-`)',
    );
  }
  return text(200, challenge);
}

function hexBytes(hex: string): Uint8Array | undefined {
  if (hex.length !== 64 || !/^[0-9a-fA-F]+$/.test(hex)) {
    return undefined;
  }
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function receive(settings: Settings, request: WebhookRequest): WebhookOutcome {
  const signature = header(request, 'x-hub-signature-256');
  if (signature === undefined) {
    return text(401, 'missing X-Hub-Signature-256');
  }
  const mac = signature.startsWith('sha256=') ? hexBytes(signature.slice(7)) : undefined;
  if (
    mac === undefined ||
    !signing(settings.appSecret, () => verifyHmacSha256(settings.appSecret, request.body, mac))
  ) {
    return text(403, 'X-Hub-Signature-256 does not match the body');
  }
  let delivery: unknown;
  try {
    delivery = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body));
  } catch (e) {
    return malformed(`not a webhook delivery: ${String(e)}`);
  }
  if (!isObject(delivery)) {
    return malformed('not a webhook delivery: the body is not a JSON object');
  }
  if (delivery.object !== 'whatsapp_business_account') {
    return malformed(
      `object is ${JSON.stringify(delivery.object ?? null)}; this connector serves \`whatsapp_business_account\` subscriptions`,
    );
  }
  const out: WebhookOutcome = text(200, 'EVENT_RECEIVED');
  const now = nowMs();
  try {
    for (const entry of list(delivery.entry, 'entry')) {
      for (const change of list(field(entry, 'entry[]').changes, 'entry[].changes')) {
        collectChange(settings, field(change, 'entry[].changes[]'), now, out);
      }
    }
  } catch (e) {
    if (e instanceof Malformed) {
      return malformed(e.message);
    }
    throw e;
  }
  return out;
}

class Malformed extends Error {}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function field(value: unknown, where: string): Json {
  if (!isObject(value)) {
    throw new Malformed(`${where} is not an object`);
  }
  return value;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new Malformed(`${where} is not a list`);
  }
  return value;
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new Malformed(`${where} is missing or not a string`);
  }
  return value;
}

function optStr(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** WhatsApp times are Unix seconds as a decimal string. */
function epochMs(value: unknown, fallback: bigint): bigint {
  if (typeof value === 'string' && /^\d{1,12}$/.test(value)) {
    return BigInt(value) * 1000n;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value) * 1000n;
  }
  return fallback;
}

function collectChange(settings: Settings, change: Json, now: bigint, out: WebhookOutcome): void {
  if (change.field !== 'messages') {
    ignored(
      'unhandled_field',
      String(change.field ?? 'none'),
      'only the `messages` field of WhatsApp webhooks is handled',
    );
    return;
  }
  const value = field(change.value, 'entry[].changes[].value');
  const metadata = field(value.metadata, 'value.metadata');
  const account = str(metadata.phone_number_id, 'value.metadata.phone_number_id');
  if (!settings.accounts.has(account)) {
    ignored(
      'unknown_account',
      account,
      `phone number id ${account} is not one of this connector's accounts`,
    );
    return;
  }
  const names = new Map<string, string>();
  for (const contact of list(value.contacts, 'value.contacts')) {
    const c = field(contact, 'value.contacts[]');
    const waId = optStr(c.wa_id);
    const name = isObject(c.profile) ? optStr(c.profile.name) : undefined;
    if (waId !== undefined && name !== undefined) {
      names.set(waId, name);
    }
  }
  for (const item of list(value.messages, 'value.messages')) {
    const message = toMessage(settings, account, field(item, 'value.messages[]'), names, now);
    if (message !== undefined) {
      out.messages.push(message);
    }
  }
  for (const item of list(value.statuses, 'value.statuses')) {
    const receipt = toReceipt(account, field(item, 'value.statuses[]'), now);
    if (receipt !== undefined) {
      out.receipts.push(receipt);
    }
  }
}

function toMessage(
  settings: Settings,
  account: string,
  m: Json,
  names: Map<string, string>,
  now: bigint,
): Message | undefined {
  const id = str(m.id, 'value.messages[].id');
  const from = str(m.from, 'value.messages[].from');
  const type = optStr(m.type) ?? 'none';
  let body: string;
  const attachments: Attachment[] = [];
  const extra: Array<[string, string]> = [['whatsapp_type', type]];
  if (type === 'text') {
    body = str(isObject(m.text) ? m.text.body : undefined, 'value.messages[].text.body');
  } else if (type === 'image') {
    const image = field(m.image, 'value.messages[].image');
    const mediaId = str(image.id, 'value.messages[].image.id');
    body = optStr(image.caption) ?? '';
    // WhatsApp gives no address, only a media id: its Graph node answers (with the
    // account's token) with a short-lived download URL.
    attachments.push({
      kind: 'image',
      url: `${settings.graphBase}/${settings.apiVersion}/${mediaId}`,
      mimeType: optStr(image.mime_type),
      description: optStr(image.caption),
    });
    extra.push(['whatsapp_media_id', mediaId]);
  } else {
    ignored(
      'unsupported_type',
      id,
      `WhatsApp message type \`${type}\` is not handled by this connector`,
    );
    return undefined;
  }
  const context = isObject(m.context) ? m.context : undefined;
  return {
    externalId: id,
    account,
    conversationKey: `wa:${account}:${from}`,
    author: { id: from, handle: from, displayName: names.get(from) },
    text: body,
    kind: 'private-message',
    inReplyTo: context === undefined ? undefined : optStr(context.id),
    attachments,
    createdAt: epochMs(m.timestamp, now),
    extra,
  };
}

const STATES: Record<string, DeliveryState> = {
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
};

function toReceipt(account: string, s: Json, now: bigint): Receipt | undefined {
  const id = str(s.id, 'value.statuses[].id');
  const status = optStr(s.status) ?? 'none';
  const state = STATES[status];
  if (state === undefined) {
    ignored('status_' + status.replace(/[^a-z0-9_-]/g, '').slice(0, 32), id, `a \`${status}\` status is not a receipt`);
    return undefined;
  }
  if (state === 'failed') {
    const errors = list(s.errors, 'value.statuses[].errors')
      .map((e) => (isObject(e) ? `${String(e.code ?? '?')} ${String(e.title ?? '')}` : ''))
      .join('; ');
    write('warn', `WhatsApp could not deliver ${id}: ${errors || 'no reason given'}`);
  }
  return { account, externalId: id, state, at: epochMs(s.timestamp, now) };
}
