// Types of the imports of contract `centralino:plugin@0.1.0` (wit/since_v0.1.0), as
// componentize-js presents them to JavaScript: records are objects with camelCase fields,
// enums are their case names, `u64` is a bigint, `list<u8>` a Uint8Array, `option<T>`
// is `T | undefined`, and a `result` import returns its ok value or throws an error whose
// `payload` is the err value.

declare module 'centralino:plugin/log@0.1.0' {
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  export function write(level: Level, message: string): void;
}

declare module 'centralino:plugin/clock@0.1.0' {
  export function nowMs(): bigint;
}

declare module 'centralino:plugin/signing@0.1.0' {
  export function hmacSha256(secret: string, data: Uint8Array): Uint8Array;
  export function verifyHmacSha256(secret: string, data: Uint8Array, mac: Uint8Array): boolean;
  export function secretEquals(secret: string, candidate: string): boolean;
}

declare module 'centralino:plugin/http@0.1.0' {
  export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';
  export interface Request {
    method: Method;
    url: string;
    headers: Array<[string, string]>;
    body?: Uint8Array;
    credential?: string;
    timeoutMs?: number;
  }
  export interface Response {
    status: number;
    headers: Array<[string, string]>;
    body: Uint8Array;
  }
  export type HttpError =
    | { tag: 'denied'; val: string }
    | { tag: 'invalid-request'; val: string }
    | { tag: 'timeout' }
    | { tag: 'connection'; val: string }
    | { tag: 'too-large'; val: bigint }
    | { tag: 'rate-limited'; val: bigint };
  export function fetch(request: Request): Response;
}

// Globals of the StarlingMonkey engine inside the component that the connector uses.
declare class TextEncoder {
  encode(input: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input: Uint8Array): string;
}
