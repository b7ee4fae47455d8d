// The redaction key: read from its file, refused with how to make one when it cannot be a key.
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { CtError, Exit, sysCode } from '../../common/errors.js';
import { MIN_KEY_BYTES } from './pseudonym.js';

/** A key file larger than this is not a key (a journal given by mistake, say). */
export const MAX_KEY_BYTES = 64 * 1024;

export const MAKE_KEY =
  'make one with: head -c 32 /dev/urandom > redact.key && chmod 600 redact.key';

/** The key's bytes; CtError (exit 2) saying how to make one when it is missing or too short. */
export function readKey(path: string | undefined, warn: (m: string) => void): Uint8Array {
  if (path === undefined) {
    throw new CtError(
      'ENOKEY',
      `redact needs --key FILE, a secret of at least ${MIN_KEY_BYTES} random bytes (the same key maps journals alike): ${MAKE_KEY}`,
      { exit: Exit.USAGE },
    );
  }
  const failed = (err: unknown) =>
    new CtError(
      sysCode(err) ?? 'EKEY',
      `cannot read the key file ${path}: ${(err as Error).message}; give the file of random bytes, or ${MAKE_KEY}`,
      { exit: Exit.USAGE, cause: err },
    );
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw failed(err);
  }
  try {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw failed(err);
    }
    if (!st.isFile()) {
      throw new CtError('EKEY', `the key file ${path} is not a regular file: ${MAKE_KEY}`, {
        exit: Exit.USAGE,
      });
    }
    if (st.size > MAX_KEY_BYTES) {
      throw new CtError(
        'EKEY',
        `the key file ${path} holds ${st.size} bytes, not a key (at most ${MAX_KEY_BYTES}): give the key file, or ${MAKE_KEY}`,
        { exit: Exit.USAGE },
      );
    }
    const buf = Buffer.alloc(st.size);
    let got = 0;
    try {
      for (let n = -1; n !== 0 && got < buf.length; got += n) {
        n = readSync(fd, buf, got, buf.length - got, got);
      }
    } catch (err) {
      throw failed(err);
    }
    if (got < MIN_KEY_BYTES) {
      throw new CtError(
        'EKEY',
        `the key file ${path} holds ${got} bytes; a key needs at least ${MIN_KEY_BYTES} random bytes: ${MAKE_KEY}`,
        { exit: Exit.USAGE },
      );
    }
    if ((st.mode & 0o044) !== 0) {
      warn(
        `the key file ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): whoever reads it can undo the redaction; chmod 600 ${path}`,
      );
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
