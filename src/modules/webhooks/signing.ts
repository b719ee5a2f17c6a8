// Signing a delivery (api.md §20.2): the contract's `X-Arkloop-Signature` and the Standard
// Webhooks 1.0 headers, both HMAC-SHA256 keyed by the endpoint secret's UTF-8 bytes (so a
// Standard Webhooks library verifies given base64(secret)). node:crypto does the HMAC; the
// header layout is the contract's, so there is nothing a library would add.
import { createHmac, randomBytes } from 'node:crypto';

/** `whsec_` + 32 random bytes, base64url (§2.8). */
export function generateSecret(): string {
  return 'whsec_' + randomBytes(32).toString('base64url');
}

export interface SignedHeaders {
  'x-arkloop-signature': string;
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** The signature headers of one attempt: `t` is unix seconds, `deliveryId` the webhook-id. */
export function signDelivery(secret: string, deliveryId: string, t: number, body: string): SignedHeaders {
  const key = Buffer.from(secret, 'utf8');
  const contract = createHmac('sha256', key).update(`${t}.${body}`).digest('hex');
  const standard = createHmac('sha256', key).update(`${deliveryId}.${t}.${body}`).digest('base64');
  return {
    'x-arkloop-signature': `t=${t},v1=${contract}`,
    'webhook-id': deliveryId,
    'webhook-timestamp': String(t),
    'webhook-signature': `v1,${standard}`,
  };
}
