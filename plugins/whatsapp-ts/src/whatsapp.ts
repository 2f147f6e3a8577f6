// `whatsapp-ts`: the channel connector for the WhatsApp Business Cloud API, written in
// TypeScript and built into a component with componentize-js against contract 0.1.
//
// Everything arrives by webhook (`webhook.ts`): Meta verifies the subscription with a GET
// handshake, then POSTs deliveries signed with the app secret. Text and image messages
// become private messages (`wa:<phone number id>:<wa id>` threads); `statuses[]` become
// receipts; other message types are logged as ignored. Replies go out through
// `POST /{version}/{phone number id}/messages` (`send.ts`).
//
// Settings: `graph_base` (default https://graph.facebook.com), `api_version` (v25.0),
// `app_secret` and `verify_token` (NAMES of host-held secrets). Accounts: `id` is the
// phone number id, `credential` the name of its access token (attached as a bearer).
//
// The 24 h customer-service window is declared in the component's
// `centralino-reply-window` section (added by build.mjs from package.json).

import { type Settings, settingsFrom } from './config.js';
import { MAX_TEXT, send } from './send.js';
import {
  type Config,
  type Description,
  type OutboundMessage,
  type PollResult,
  type Sent,
  type WebhookOutcome,
  type WebhookRequest,
  Failure,
  invalidInput,
} from './types.js';
import { handle } from './webhook.js';

let settings: Settings | undefined;

function configured(): Settings {
  if (settings === undefined) {
    throw invalidInput('the connector is not configured yet');
  }
  return settings;
}

export const connector = {
  describe(): Description {
    return {
      channel: 'whatsapp',
      summary:
        'WhatsApp Business Cloud API (TypeScript): text and image messages and delivery ' +
        'receipts by webhook; text replies within the 24 h customer-service window',
      capabilities: ['private-message', 'webhook'],
      maxTextLength: MAX_TEXT,
    };
  },

  configure(config: Config): void {
    settings = settingsFrom(config);
  },

  poll(account: string, _cursor: string | undefined): PollResult {
    throw new Failure({
      tag: 'rejected',
      val: `WhatsApp delivers by webhook; account ${account} is not polled`,
    });
  },

  handleWebhook(request: WebhookRequest): WebhookOutcome {
    return handle(configured(), request);
  },

  send(message: OutboundMessage): Sent {
    return send(configured(), message);
  },
};
