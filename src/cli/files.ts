import { constants, createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { open, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { AdminError, invalid } from '../store/admin/errors.ts';

export interface OutputFileOptions {
  /**
   * The file will hold secrets (PINs): created new with mode 0600 (O_EXCL: an existing file or symlink is refused,
   * so nobody can plant one to redirect or read it), and removed again if the export fails.
   */
  secret?: boolean;
}

const reason = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EEXIST') return 'it already exists (an export of PINs or voucher numbers never overwrites a file: remove it or choose another name)';
  if (e.code === 'ELOOP') return 'it is a symbolic link (refused)';
  return e.code ? `${e.code}: ${e.message.replace(/^\w+: /, '').replace(/, (open|write|close) .*$/, '')}` : String(e.message ?? err);
};
const fileError = (path: string, err: unknown) => new AdminError('INVALID_INPUT', `cannot write ${path}: ${reason(err)}`);

/**
 * Writes an export to `path` through `run`, which streams into the file. The file is never reached through a
 * symbolic link (O_NOFOLLOW); with `secret` it is created new with mode 0600. Any open or write error (disk full,
 * permission) ends the export with one message naming the file.
 */
export async function writeOutputFile<T>(path: string, opts: OutputFileOptions, run: (out: Writable) => Promise<T>): Promise<T> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (opts.secret ? constants.O_EXCL : constants.O_TRUNC);
  let handle;
  try {
    handle = await open(path, flags, opts.secret ? 0o600 : 0o644);
  } catch (err) {
    throw fileError(path, err);
  }
  const file = createWriteStream(path, { fd: handle, autoClose: true });
  let failure: unknown;
  let wake: (() => void) | undefined;
  const failed = new Promise<never>((_, reject) =>
    file.once('error', (err) => {
      failure = err;
      reject(fileError(path, err));
      wake?.();
    }),
  );
  failed.catch(() => {});
  // What the export writes to: once the file has failed it swallows the rest, so an exporter waiting for 'drain'
  // finishes (and releases its database cursor) instead of waiting forever.
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failure !== undefined || file.write(chunk)) return cb();
      wake = () => {
        wake = undefined;
        cb();
      };
      file.once('drain', () => wake?.());
    },
    final(cb) {
      if (failure !== undefined) return cb();
      file.end(() => cb());
    },
  });
  try {
    const result = await Promise.race([run(out), failed]);
    if (!out.writableEnded) out.end();
    await Promise.race([finished(file), failed]);
    return result;
  } catch (err) {
    file.destroy();
    if (!file.closed) await once(file, 'close').catch(() => {});
    if (opts.secret) await unlink(path).catch(() => {});
    throw failure !== undefined ? fileError(path, failure) : err;
  }
}

/**
 * Reads a file of at most `maxBytes` (a regular file only): a larger or special file is refused without reading it
 * all, so a wrong path (a disk image, /dev/zero) cannot exhaust memory.
 */
export async function readLimitedFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw invalid(`${path} is not a regular file`);
    if (st.size > maxBytes) throw invalid(`${path} is larger than ${maxBytes} bytes`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw invalid(`${path} is larger than ${maxBytes} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await handle.close();
  }
}
