// The connector's settings, validated once in `configure`.

import { type Config, invalidInput } from './types.js';

export interface Settings {
  /** Graph API base URL, without a trailing slash. */
  graphBase: string;
  /** Graph API version in request paths. */
  apiVersion: string;
  /** NAME of the host-held app secret that signs deliveries. */
  appSecret: string;
  /** NAME of the host-held secret the verification handshake must present. */
  verifyToken: string;
  /** Phone number ids served, with the name of each one's access token. */
  accounts: Map<string, string | undefined>;
}

export const DEFAULT_GRAPH_BASE = 'https://graph.facebook.com';
export const DEFAULT_API_VERSION = 'v25.0';

const KNOWN = new Set(['graph_base', 'api_version', 'app_secret', 'verify_token']);

export function settingsFrom(config: Config): Settings {
  const get = (name: string): string | undefined => {
    const pair = config.settings.find(([key]) => key === name);
    return pair === undefined ? undefined : pair[1];
  };
  for (const [key] of config.settings) {
    if (!KNOWN.has(key)) {
      throw invalidInput(
        `unknown setting \`${key}\` (known: graph_base, api_version, app_secret, verify_token)`,
      );
    }
  }
  const graphBase = (get('graph_base') ?? DEFAULT_GRAPH_BASE).replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(graphBase)) {
    throw invalidInput(`setting \`graph_base\` must be an http(s) URL, not \`${graphBase}\``);
  }
  const apiVersion = get('api_version') ?? DEFAULT_API_VERSION;
  if (!/^v\d+\.\d+$/.test(apiVersion)) {
    throw invalidInput(`setting \`api_version\` must look like v25.0, not \`${apiVersion}\``);
  }
  const appSecret = get('app_secret') ?? 'app_secret';
  const verifyToken = get('verify_token') ?? 'verify_token';
  for (const [name, value] of [['app_secret', appSecret], ['verify_token', verifyToken]]) {
    if (value.trim() === '') {
      throw invalidInput(`setting \`${name}\` must name a secret, not be empty`);
    }
  }
  const accounts = new Map<string, string | undefined>();
  for (const account of config.accounts) {
    if (!/^\d+$/.test(account.id)) {
      throw invalidInput(
        `account \`${account.id}\` must be a WhatsApp phone number id (digits only)`,
      );
    }
    accounts.set(account.id, account.credential);
  }
  return { graphBase, apiVersion, appSecret, verifyToken, accounts };
}
