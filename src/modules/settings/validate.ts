// What a platform setting may be set to through the API (api.md §21.24): the type, range and
// enum of §28.2 (registry.checkValue), plus bounds the table implies — an int fits its column,
// strings and JSON have a size, URLs are absolute http(s), the sender is an address, trusted
// proxies are CIDRs, and the deduction policy is a list of tiers the credit code can read.
import { isIP } from 'node:net';
import { MAX_INT4, byteLength } from '../../http/schemas.js';
import { checkValue, type SettingDef, type SettingValue } from './registry.js';

const MAX_STRING = 2048;
const MAX_JSON_BYTES = 16 * 1024;
const URL_KEYS = new Set(['turnstile.verify_url', 'web_fetch.firecrawl_base_url', 'web_search.searxng_base_url']);
const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** "addr@host" or "Display Name <addr@host>". */
export function isSenderAddress(v: string): boolean {
  const m = /^[^<>]*<([^<>]+)>$/.exec(v);
  return EMAIL.test(m ? m[1].trim() : v);
}

function isCidr(v: string): boolean {
  const [addr, prefix, ...rest] = v.split('/');
  const family = isIP(addr);
  if (!family || rest.length) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

function checkPolicy(v: Record<string, unknown>): void {
  const tiers = v.tiers;
  if (!Array.isArray(tiers) || tiers.length === 0 || tiers.length > 100) throw new Error('must be {"tiers": [...]} with 1–100 tiers');
  tiers.forEach((t, i) => {
    if (!t || typeof t !== 'object' || Array.isArray(t)) throw new Error(`tiers[${i}] must be an object`);
    const { multiplier, up_to_tokens } = t as Record<string, unknown>;
    if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier < 0) throw new Error(`tiers[${i}].multiplier must be a number ≥ 0`);
    if (up_to_tokens !== undefined && (typeof up_to_tokens !== 'number' || !Number.isInteger(up_to_tokens) || up_to_tokens < 0)) {
      throw new Error(`tiers[${i}].up_to_tokens must be an integer ≥ 0`);
    }
  });
}

/** The value to store for `def`, or throws an Error whose message is the reason. */
export function validateSettingValue(def: SettingDef, value: unknown): SettingValue {
  const v = checkValue(def, value);
  if (def.type === 'int' && def.max === undefined && (v as number) > MAX_INT4) throw new Error(`must be ≤ ${MAX_INT4}`);
  if (def.type === 'number' && Math.abs(v as number) > 1e15) throw new Error('must be at most 1e15');
  if (def.type === 'json') {
    if (Array.isArray(v)) throw new Error('must be a JSON object');
    if (byteLength(JSON.stringify(v)) > MAX_JSON_BYTES) throw new Error(`must be at most ${MAX_JSON_BYTES} bytes`);
    if (def.key === 'credit.deduction_policy') checkPolicy(v as Record<string, unknown>);
  }
  if (def.type === 'string') {
    const s = v as string;
    if (s.length > MAX_STRING) throw new Error(`must be at most ${MAX_STRING} characters`);
    if (s !== '' && URL_KEYS.has(def.key) && !/^https?:\/\/[^\s/]+\S*$/i.test(s)) throw new Error('must be an absolute http(s) URL');
    if (s !== '' && def.key === 'email.from' && !isSenderAddress(s)) throw new Error('must be an email address (optionally "Name <address>")');
    if (s !== '' && def.key === 'email.smtp_host' && /[\s/]/.test(s)) throw new Error('must be a host name or address');
    if (def.key === 'gateway.trusted_cidrs') {
      const bad = s.split(',').map((x) => x.trim()).filter((x) => x !== '' && !isCidr(x));
      if (bad.length) throw new Error(`must be comma-separated CIDRs or addresses (bad: ${bad[0].slice(0, 64)})`);
    }
  }
  return v;
}
