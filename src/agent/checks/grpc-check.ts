/**
 * `grpc://host:port[/service]`, `grpcs://…`: the standard `grpc.health.v1.Health/Check`, passing on
 * `SERVING`. `@grpc/grpc-js` and `grpc-health-check` (decision 0021) are imported on the first probe
 * only, so an agent without a gRPC check never loads them. One channel per check, kept between probes.
 *
 * @module
 */
import type { ChannelCredentials, Client, ServiceError } from '@grpc/grpc-js';
import type { Probe, ProbeOutcome } from '../health-checker.js';
import type { CheckSpec } from './check-spec.js';

type GrpcSpec = NonNullable<CheckSpec['grpc']>;

interface HealthClient extends Client {
  Check(
    request: { service: string },
    callback: (err: ServiceError | null, response?: { status?: unknown }) => void,
  ): { cancel(): void };
}

interface Loaded {
  client: HealthClient;
  statusName: (code: number) => string;
}

export class GrpcProbe implements Probe {
  #loaded: Promise<Loaded> | undefined;
  #closed = false;

  constructor(
    readonly spec: GrpcSpec,
    /** The PEM text of `spec.ca`, read by the caller. */
    private readonly ca?: string,
  ) {}

  async run(signal: AbortSignal): Promise<ProbeOutcome> {
    this.#loaded ??= this.#load();
    const { client, statusName } = await this.#loaded;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const call = client.Check({ service: this.spec.service }, (err, response) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return reject(signal.reason as Error);
        if (err) {
          // "grpc UNAVAILABLE: No connection established…": the status name says the most.
          const details = (err.details || '').split('\n')[0]!.slice(0, 160);
          return resolve({ ok: false, error: `grpc ${statusName(err.code)}${details ? `: ${details}` : ''}` });
        }
        const status = typeof response?.status === 'string' ? response.status : 'UNKNOWN';
        resolve(status === 'SERVING' ? { ok: true, output: status } : { ok: false, error: status });
      });
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.#closed = true;
    void this.#loaded?.then(({ client }) => client.close()).catch(() => undefined);
  }

  async #load(): Promise<Loaded> {
    const grpc = await import('@grpc/grpc-js');
    const health = (await import('grpc-health-check')) as typeof import('grpc-health-check') & { default?: typeof import('grpc-health-check') };
    const definition = health.service ?? health.default?.service;
    const { host, port, tls, insecure } = this.spec;
    let credentials: ChannelCredentials;
    if (!tls) credentials = grpc.credentials.createInsecure();
    else {
      credentials = grpc.credentials.createSsl(
        this.ca !== undefined ? Buffer.from(this.ca) : null,
        null,
        null,
        insecure ? { rejectUnauthorized: false } : {},
      );
    }
    const Health = grpc.makeClientConstructor(definition as Parameters<typeof grpc.makeClientConstructor>[0], 'grpc.health.v1.Health');
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    // Reconnect soon after the server is back: the default backoff grows to two minutes.
    const client = new Health(address, credentials, { 'grpc.max_reconnect_backoff_ms': 1000, 'grpc.initial_reconnect_backoff_ms': 200 }) as unknown as HealthClient;
    if (this.#closed) client.close();
    const names = grpc.status as unknown as Record<number, string>;
    return { client, statusName: (code) => names[code] ?? String(code) };
  }
}
