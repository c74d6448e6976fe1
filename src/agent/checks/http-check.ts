/**
 * `http(s)://…` with options: a request with the configured method and headers that passes on an
 * expected status and, when asked, a body holding a text or a JSON value. On the agent's one-socket
 * client (../instance-http.ts); at most {@link DEFAULT_MAX_BODY_BYTES} of the body are read.
 *
 * @module
 */
import { DEFAULT_MAX_BODY_BYTES, statusFromBody, type Probe, type ProbeOutcome } from '../health-checker.js';
import { InstanceHttpClient } from '../instance-http.js';
import type { CheckSpec } from './check-spec.js';

type HttpSpec = NonNullable<CheckSpec['http']>;

/** `200-299` for people; `200, 204`. */
export function describeExpect(expect: HttpSpec['expect']): string {
  return expect.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(', ');
}

/** The value at a dot path of parsed JSON, or undefined. */
function valueAt(json: unknown, path: readonly string[]): unknown {
  let v = json;
  for (const key of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** A short, one-line rendering of a JSON value found in a body. */
function shortValue(v: unknown): string {
  const text = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export class HttpProbe implements Probe {
  readonly #client: InstanceHttpClient;
  readonly #defaultExpect: boolean;

  constructor(
    readonly spec: HttpSpec,
    /** The PEM text of `spec.ca`, read by the caller. */
    ca?: string,
  ) {
    const tls = spec.url.startsWith('https:') ? { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !spec.insecure } : undefined;
    this.#client = new InstanceHttpClient(spec.url, tls ? { tls } : {});
    this.#defaultExpect = spec.expect.length === 1 && spec.expect[0]![0] === 200 && spec.expect[0]![1] === 299;
  }

  async run(signal: AbortSignal): Promise<ProbeOutcome> {
    const { spec } = this;
    const wantsBody = spec.body !== undefined || spec.json !== undefined;
    const res = await this.#client.request({
      method: spec.method,
      signal,
      headers: { accept: 'application/json, */*;q=0.5', 'user-agent': 'proxy-stone-sd', ...spec.headers },
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      keepBody: () => true,
    });
    if (res.bodyError !== undefined && signal.aborted) throw res.bodyError;
    const status = res.statusCode;
    if (!spec.expect.some(([lo, hi]) => status >= lo && status <= hi)) {
      // A failing answer's body may say why (Proxy-Stone's `{status: "degraded"}`); a 2xx one's "ok" would not.
      const said = res.body !== undefined && (status < 200 || status >= 300) ? statusFromBody(res.body) : undefined;
      // "HTTP 503 (degraded)" as the default check says it; with `expect=` the expectation too.
      const detail = [said, this.#defaultExpect ? undefined : `expected ${describeExpect(spec.expect)}`].filter((d) => d !== undefined).join('; ');
      return { ok: false, httpStatus: status, ...(detail ? { error: `HTTP ${status} (${detail})` } : {}) };
    }
    if (!wantsBody) return { ok: true, httpStatus: status, output: `HTTP ${status}` };
    const body = res.body;
    if (body === undefined) return { ok: false, httpStatus: status, error: `HTTP ${status} (body over ${DEFAULT_MAX_BODY_BYTES} bytes or cut short, not checked)` };
    if (spec.body !== undefined && !body.includes(spec.body)) {
      return { ok: false, httpStatus: status, error: `HTTP ${status} (body lacks ${JSON.stringify(spec.body)})` };
    }
    if (spec.json !== undefined) {
      const path = spec.json.path.join('.');
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return { ok: false, httpStatus: status, error: `HTTP ${status} (body is not JSON)` };
      }
      const v = valueAt(parsed, spec.json.path);
      if (v === undefined || v === null) return { ok: false, httpStatus: status, error: `HTTP ${status} (no value at ${path})` };
      if (spec.json.value !== undefined && (typeof v === 'object' || String(v) !== spec.json.value)) {
        return { ok: false, httpStatus: status, error: `HTTP ${status} (${path} is ${shortValue(v)}, expected ${JSON.stringify(spec.json.value)})` };
      }
      return { ok: true, httpStatus: status, output: `HTTP ${status}, ${path} ${shortValue(v)}` };
    }
    return { ok: true, httpStatus: status, output: `HTTP ${status}, body has ${JSON.stringify(spec.body)}` };
  }

  close(): void {
    this.#client.close();
  }
}
