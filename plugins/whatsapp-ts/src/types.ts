// The types of the `connector` export and of `types` in contract 0.1, as componentize-js
// expects the values a JavaScript export returns.

export type Pairs = Array<[string, string]>;

export type MessageKind = 'public-post' | 'private-message' | 'comment';

export type Capability =
  | 'public-reply'
  | 'private-message'
  | 'comment-reply'
  | 'webhook'
  | 'polling'
  | 'attachments';

export interface Person {
  id: string;
  handle?: string;
  displayName?: string;
}

export interface Attachment {
  kind: string;
  url?: string;
  mimeType?: string;
  description?: string;
}

export interface Message {
  externalId: string;
  account: string;
  conversationKey: string;
  author: Person;
  text: string;
  kind: MessageKind;
  inReplyTo?: string;
  attachments: Attachment[];
  createdAt: bigint;
  extra: Pairs;
}

export interface OutboundMessage {
  account: string;
  conversationKey: string;
  kind: MessageKind;
  recipient?: string;
  inReplyTo?: string;
  text: string;
  attachments: Attachment[];
  idempotencyKey: string;
}

export interface Description {
  channel: string;
  summary: string;
  capabilities: Capability[];
  maxTextLength: number;
}

export interface Account {
  id: string;
  handle?: string;
  credential?: string;
  settings: Pairs;
}

export interface Config {
  settings: Pairs;
  accounts: Account[];
}

export interface PollResult {
  messages: Message[];
  cursor?: string;
  nextPollAfterMs?: bigint;
}

export interface WebhookRequest {
  method: string;
  path: string;
  query: string;
  headers: Pairs;
  body: Uint8Array;
}

export interface WebhookResponse {
  status: number;
  headers: Pairs;
  body: Uint8Array;
}

export type DeliveryState = 'delivered' | 'read' | 'failed';

export interface Receipt {
  account: string;
  externalId: string;
  state: DeliveryState;
  at: bigint;
}

export interface WebhookOutcome {
  response: WebhookResponse;
  messages: Message[];
  receipts: Receipt[];
}

export interface Sent {
  externalId: string;
  sentAt: bigint;
}

export type PluginError =
  | { tag: 'invalid-credentials'; val: string }
  | { tag: 'rate-limited'; val: { retryAfterMs: bigint; detail: string } }
  | { tag: 'rejected'; val: string }
  | { tag: 'transient'; val: string }
  | { tag: 'invalid-input'; val: string };

/** Thrown from an export, it becomes the `err` of the export's `result`. */
export class Failure extends Error {
  readonly payload: PluginError;
  constructor(payload: PluginError) {
    super('val' in payload && typeof payload.val === 'string' ? payload.val : payload.tag);
    this.payload = payload;
  }
}

export function invalidInput(reason: string): Failure {
  return new Failure({ tag: 'invalid-input', val: reason });
}

export function rejected(reason: string): Failure {
  return new Failure({ tag: 'rejected', val: reason });
}

export function transient(reason: string): Failure {
  return new Failure({ tag: 'transient', val: reason });
}
