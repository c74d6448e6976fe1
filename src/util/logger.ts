import pino from 'pino';

/**
 * The logger the library accepts: pino's call shape (`info(obj, msg)` or `info(msg)`), which a
 * Proxy-Stone host (Fastify's pino) already has. A console also fits.
 */
export interface Logger {
  trace?(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * JSON lines (pino) by default; the seed's `DEBUG=proxy-stone:service-discovery` turns on debug.
 * pino was chosen for being the logger Fastify and so Proxy-Stone already use: one format in one fleet.
 */
export function createLogger(options: { level?: LogLevel; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const debugEnv = process.env.DEBUG ?? '';
  const wantsDebug = /(^|,)\s*proxy-stone:(service-discovery|\*)|(^|,)\s*\*/.test(debugEnv);
  const level = wantsDebug && (options.level === undefined || options.level === 'info') ? 'debug' : (options.level ?? 'info');
  return pino(
    {
      name: options.name ?? 'proxy-stone-sd',
      level,
      base: { pid: process.pid },
      // Never log credentials, whatever object a caller passes.
      redact: { paths: ['password', '*.password', 'apiKey', '*.apiKey', 'authorization', '*.authorization'], censor: '***' },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}
