// Replies: `POST {graph_base}/{api_version}/{phone number id}/messages`, a text message to
// the customer, threaded on the answered message with `context.message_id`. The plugin
// names the account's credential; the host attaches the token (a bearer header).

import { fetch } from 'centralino:plugin/http@0.1.0';
import { nowMs } from 'centralino:plugin/clock@0.1.0';
import type { Settings } from './config.js';
import { Failure, type OutboundMessage, type Sent, invalidInput, rejected, transient } from './types.js';
import { describe } from './webhook.js';

/** Longest text body WhatsApp accepts. */
export const MAX_TEXT = 4096;

/** Graph error codes that mean "slow down". */
const THROTTLED = new Set([4, 80007, 130429, 131048, 131056]);
/** Graph error code for a reply outside the 24 h customer-service window. */
const REENGAGEMENT = 131047;

export function send(settings: Settings, message: OutboundMessage): Sent {
  if (message.kind !== 'private-message') {
    throw rejected(`WhatsApp has only private messages, not ${message.kind}`);
  }
  if (!settings.accounts.has(message.account)) {
    throw invalidInput(`account ${message.account} is not configured for this connector`);
  }
  if (message.attachments.length > 0) {
    throw rejected('this connector sends text only');
  }
  const length = [...message.text].length;
  if (length === 0 || length > MAX_TEXT) {
    throw rejected(`a WhatsApp text must have 1 to ${MAX_TEXT} characters, not ${length}`);
  }
  const to = message.recipient ?? recipientOf(message.account, message.conversationKey);
  const payload: Record<string, unknown> = {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to,
    type: 'text',
    text: { body: message.text, preview_url: false },
  };
  if (message.inReplyTo !== undefined) {
    payload.context = { message_id: message.inReplyTo };
  }
  let response;
  try {
    response = fetch({
      method: 'post',
      url: `${settings.graphBase}/${settings.apiVersion}/${message.account}/messages`,
      headers: [['content-type', 'application/json']],
      body: new TextEncoder().encode(JSON.stringify(payload)),
      credential: settings.accounts.get(message.account),
      timeoutMs: 15000,
    });
  } catch (e) {
    throw httpFailure(e);
  }
  const body = parse(response.body);
  if (response.status >= 200 && response.status < 300) {
    const messages = isObject(body) && Array.isArray(body.messages) ? body.messages : [];
    const first: unknown = messages[0];
    const id = isObject(first) && typeof first.id === 'string' ? first.id : undefined;
    if (id === undefined) {
      throw transient(`WhatsApp answered ${response.status} without a message id`);
    }
    return { externalId: id, sentAt: nowMs() };
  }
  const error = isObject(body) && isObject(body.error) ? body.error : {};
  const code = typeof error.code === 'number' ? error.code : undefined;
  const detail = `WhatsApp answered ${response.status}${code === undefined ? '' : ` (code ${code})`}: ${
    typeof error.message === 'string' ? error.message : 'no error message'
  }`;
  if (response.status === 401 || code === 190) {
    throw new Failure({ tag: 'invalid-credentials', val: detail });
  }
  if (response.status === 429 || (code !== undefined && THROTTLED.has(code))) {
    throw new Failure({ tag: 'rate-limited', val: { retryAfterMs: 60000n, detail } });
  }
  if (code === REENGAGEMENT) {
    throw rejected(`outside_messaging_window: ${detail}`);
  }
  if (response.status >= 500) {
    throw transient(detail);
  }
  throw rejected(detail);
}

/** The customer of a `wa:<phone number id>:<wa id>` conversation. */
function recipientOf(account: string, key: string): string {
  const prefix = `wa:${account}:`;
  const waId = key.startsWith(prefix) ? key.slice(prefix.length) : '';
  if (!/^\d+$/.test(waId)) {
    throw invalidInput(`no recipient, and \`${key}\` is not a conversation of account ${account}`);
  }
  return waId;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parse(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
}

function httpFailure(e: unknown): Failure {
  const payload =
    e !== null && typeof e === 'object' && 'payload' in e ? (e as { payload: unknown }).payload : undefined;
  const tag = isObject(payload) && typeof payload.tag === 'string' ? payload.tag : undefined;
  const val = isObject(payload) ? payload.val : undefined;
  switch (tag) {
    case 'rate-limited':
      return new Failure({
        tag: 'rate-limited',
        val: {
          retryAfterMs: typeof val === 'bigint' ? val : 60000n,
          detail: 'the host holds WhatsApp requests back: the rate-limit window is spent',
        },
      });
    case 'timeout':
      return transient('WhatsApp did not answer in time');
    case 'connection':
    case 'too-large':
      return transient(`WhatsApp could not be reached: ${describe(e)}`);
    case 'invalid-request':
      return invalidInput(`the request to WhatsApp was refused by the host: ${describe(e)}`);
    default:
      return rejected(`the request to WhatsApp was refused by the host: ${describe(e)}`);
  }
}
