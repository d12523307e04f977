/**
 * Field rules shared by the encoder and the decoder, so that nothing the encoder
 * accepts is refused by the decoder and vice versa.
 *
 * @module
 */
import { ALL_FLAGS, Flag, MAX_KEY_LENGTH, MAX_PAYLOAD_LENGTH, Op, opName } from "./constants.ts";
import type { FrameFields } from "./types.ts";

const isU53 = (v: number) => Number.isSafeInteger(v) && v >= 0;

/**
 * Returns why the fields are invalid, or undefined when they are valid.
 * Lengths are passed separately: the encoder knows them from the inputs, the
 * decoder from the header.
 */
export function fieldProblem(
  f: FrameFields,
  keyLength: number,
  payloadLength: number,
): string | undefined {
  if (!isU53(f.lsn) || f.lsn < 1) return `LSN ${f.lsn} is not an integer ≥ 1`;
  if (f.op !== Op.WRITE && f.op !== Op.COMMIT && f.op !== Op.DELETE) return `unknown op ${f.op}`;
  if (!Number.isInteger(f.flags) || (f.flags & ~ALL_FLAGS) !== 0 || f.flags < 0) {
    return `unknown flag bits 0x${(f.flags >>> 0).toString(16)}`;
  }
  if (keyLength < 1 || keyLength > MAX_KEY_LENGTH) {
    return `key length ${keyLength} outside 1..${MAX_KEY_LENGTH}`;
  }
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > MAX_PAYLOAD_LENGTH) {
    return `payload length ${payloadLength} outside 0..${MAX_PAYLOAD_LENGTH}`;
  }
  if (!isU53(f.txn) || f.txn < 1 || f.txn > f.lsn) {
    return `txn ${f.txn} outside 1..${f.lsn} (a transaction starts at or before its records)`;
  }
  if (!isU53(f.offset) || !Number.isSafeInteger(f.offset + payloadLength)) {
    return `offset ${f.offset} is not a safe integer range`;
  }
  if (!isU53(f.mtime)) return `mtime ${f.mtime} is not an integer ≥ 0`;
  const name = opName(f.op);
  const commitNow = (f.flags & Flag.COMMIT_NOW) !== 0;
  const replace = (f.flags & Flag.REPLACE) !== 0;
  const blockDigests = (f.flags & Flag.BLOCK_DIGESTS) !== 0;
  switch (f.op) {
    case Op.WRITE:
      if (commitNow && f.txn !== f.lsn) {
        return `COMMIT_NOW ${name} must have txn == lsn, got ${f.txn}`;
      }
      // A multi-record transaction says REPLACE once, on its COMMIT.
      if (replace && !commitNow) return `REPLACE on a ${name} requires COMMIT_NOW`;
      break;
    case Op.COMMIT:
      if (commitNow) return `COMMIT_NOW is only valid on WRITE`;
      if (blockDigests) return `BLOCK_DIGESTS is only valid on WRITE`;
      if (!replace && f.offset !== 0) {
        return `${name} without REPLACE must have offset 0, got ${f.offset}`;
      }
      break;
    case Op.DELETE:
      if (f.flags !== 0) return `${name} takes no flags, got 0x${f.flags.toString(16)}`;
      if (f.txn !== f.lsn) return `${name} must have txn == lsn, got ${f.txn}`;
      if (payloadLength !== 0) return `${name} has no payload, got ${payloadLength} bytes`;
      if (f.offset !== 0) return `${name} must have offset 0, got ${f.offset}`;
      break;
  }
  return undefined;
}

/** Returns why a key (decoded from valid UTF-8) is unusable, or undefined. */
export function keyProblem(key: string): string | undefined {
  if (key.includes("\0")) return "key contains NUL";
  return undefined;
}
