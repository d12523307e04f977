/**
 * The destination's log receiver: appends framed records from its source to
 * its own NVLOG verbatim and fdatasyncs before acknowledging. Frames are
 * validated (checksums, LSN exactly next) before anything is written.
 *
 * A reference frame is rebuilt from what this destination holds and checked
 * against its payload digest (./ref-resolver.ts), then appended whole. One
 * that cannot be: the frames before it are appended, the rest of the body is
 * read (the link's compression context must see it all) but not kept, and
 * the answer is `{lastLsn, need}` with `need` = its LSN: the source sends it
 * whole.
 *
 * @module
 */
import { assert } from "../assert.ts";
import { FrameError, isWholeFrame, WireFrameReader } from "../protocol/log-frame/mod.ts";
import type { Frame } from "../protocol/log-frame/mod.ts";
import { RefsyncError } from "../errors/mod.ts";
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { outOfOrder } from "../storage/log/mod.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { resolveRefFrame } from "./ref-resolver.ts";

/** Frames are appended in groups of at most this many bytes (one fdatasync each). */
const GROUP_BYTES = 8 << 20;

/**
 * Receives one request body of frames; `stop` aborting (a promotion) ends
 * it after the frames read so far, with its reason.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const request: Request;
 * const wire = newWireStats();
 * const { lastLsn, need } = await receiveLog(store, request.body, wire);
 * ```
 */
export async function receiveLog(
  store: ObjectStore,
  body: ReadableStream<Uint8Array> | null,
  wire: WireStats,
  logger: Logger = rootLogger(),
  stop?: AbortSignal,
): Promise<{ lastLsn: number; need?: number }> {
  if (!body) throw new RefsyncError("bad_request", "log forwarding needs a body of frames");
  let group: Frame[] = [];
  let groupBytes = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const frames = group;
    group = [];
    groupBytes = 0;
    await store.log.appendFrames(frames);
  };
  let need: number | undefined;
  try {
    // Frames are views into the body's chunks (each a fresh buffer, none reused), not copies:
    // they are written to the log and dropped with the batch.
    const frames = body.pipeThrough(new WireFrameReader({ copy: false }), { signal: stop });
    for await (const item of frames) {
      if (need !== undefined) continue;
      let frame: Frame;
      if (isWholeFrame(item)) {
        wire.logBytesRaw += item.bytes.length;
        frame = item;
      } else {
        wire.logBytesRaw += item.wireLength;
        // A gap is refused before anything is resolved, as a whole frame's is (a reference to a
        // record this log lacks would otherwise be asked for, and the gap never named).
        const next = store.log.lastLsn + group.length + 1;
        if (item.header.lsn !== next) throw outOfOrder(item.header.lsn, next);
        const resolved = resolveRefFrame(store, item);
        if (typeof resolved === "string") {
          need = item.header.lsn;
          logger.warn("log.ref_missed", { lsn: need, cause: resolved });
          continue;
        }
        wire.logRefBlocks += item.pieces.filter((p) => p.kind !== "bytes").length;
        wire.logRefBytes += resolved.bytes.length - item.wireLength;
        frame = resolved;
      }
      wire.logFrames++;
      group.push(frame);
      groupBytes += frame.bytes.length;
      if (groupBytes >= GROUP_BYTES) await flush();
    }
    await flush();
  } catch (e) {
    // Frames before the bad one may have been appended: the answer says how far.
    await flush().catch(() => {});
    // Stopped (a promotion): the frames read so far are appended, the rest is never read.
    if (stop?.aborted) throw stop.reason;
    if (e instanceof FrameError) {
      throw new RefsyncError(
        "conflict",
        `${e.message}; this destination holds LSNs up to ${store.log.lastLsn}`,
      );
    }
    throw e;
  }
  // The answer acknowledges every record up to it: all of them must be durable here.
  const { lastLsn, durableLsn } = store.log;
  assert(
    lastLsn <= durableLsn,
    `acknowledging LSN ${lastLsn}; the log is durable to ${durableLsn}`,
  );
  return need === undefined ? { lastLsn } : { lastLsn, need };
}
