import { pino, type DestinationStream, type Level, type Logger } from 'pino';

/**
 * The service's logger: pino, JSON lines on stdout, through a small buffer (what a line costs and why it is safe:
 * docs/design.md, "Logging").
 *
 * - warn, error and fatal lines are written before the logging call returns (one synchronous write of everything
 *   buffered so far, so the order of lines is kept): a crash right after them cannot lose them;
 * - info, debug and trace lines wait in memory at most `flushMs` (and 64 KiB), then go out in one write. On a normal
 *   exit, an uncaught exception or a fatal signal handled by Node (SIGTERM/SIGINT run the drain) they are written
 *   at 'exit'; only a SIGKILL or an abort of the process loses the last `flushMs` of them.
 * flushMs 0: every line is written synchronously as it is logged.
 *
 * (pino's default destination writes every line asynchronously through libuv's thread pool: one system call and
 * two thread hand-offs per line, and warn lines are as unsafe as info ones.)
 */
export function createLogger(opts: { level: Level | 'silent'; flushMs: number; fd?: number }): Logger {
  const out = pino.destination({ dest: opts.fd ?? 1, sync: true });
  return pino({ level: opts.level }, opts.flushMs > 0 ? new BufferedLog(out, opts.flushMs) : out);
}

const WARN = 40;
const MAX_BUFFERED = 64 * 1024;
const METADATA = Symbol.for('pino.metadata');

/** Every buffer still open, written out when the process exits (one listener for all). */
const open = new Set<BufferedLog>();
let exitHook = false;

/** A pino destination that holds lines below warn for a moment (see createLogger). */
export class BufferedLog implements DestinationStream {
  /** pino sets lastLevel on a destination that asks for it (pino.metadata) before each write. */
  readonly [METADATA] = true;
  lastLevel = 0;
  private buffered = '';
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly out: { write(s: string): unknown },
    flushMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), flushMs).unref();
    open.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const b of open) b.flush();
      });
    }
  }

  write(line: string): void {
    this.buffered += line;
    if (this.lastLevel >= WARN || this.buffered.length >= MAX_BUFFERED) this.flush();
  }

  flush(): void {
    if (this.buffered === '') return;
    const s = this.buffered;
    this.buffered = '';
    this.out.write(s);
  }

  /** Writes what is held and stops the timer (tests). */
  end(): void {
    clearInterval(this.timer);
    open.delete(this);
    this.flush();
  }
}
